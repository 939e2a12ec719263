"""The dialogue engines: llama.cpp, transformers or a model server, and the choice among them."""
