"""Evaluation of a connection: its golden set of question/SQL pairs and runs over it."""
