"""Knowledge bases: extractors, cleaners, splitters, keyword and vector indexes, retrieval."""
