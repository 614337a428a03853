"""The answer engine: retrieval for a question, prompts, the chat model, support checking, extractive answers."""
