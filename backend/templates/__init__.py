"""Query templates: parameterised questions with verified SQL."""
