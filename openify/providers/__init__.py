"""Model providers: chat/completion LLMs, text embeddings and rerank, each behind one Protocol."""
