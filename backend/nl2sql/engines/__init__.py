"""SQL generators behind one interface: the offline builtin engine and LLM providers."""
