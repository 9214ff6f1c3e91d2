"""Vector stores, registered in `r.vector_stores` as factories `(directory, dimensions) -> VectorStore`."""
