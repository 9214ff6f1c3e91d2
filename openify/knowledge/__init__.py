"""Knowledge bases: extractors, cleaners, splitters, keyword and vector indexes, retrieval.

Pure building blocks with no database: the service layer stores datasets, documents and segments,
and calls these. Components come from the registries (`openify.knowledge.plugins.register`):

    r.extractors       extension -> Extractor       extractors.extract(r.extractors, filename, data, mime)
    r.splitters        doc_form  -> Splitter        split_document(r.splitters, extracted, process_rule, doc_form)
    r.keyword_indexes  "bm25"    -> BM25KeywordIndex(directory)
    r.vector_stores    "hnswlib" | "numpy" -> factory(directory, dimensions)

Indexing a document (the job): extract -> split_document -> layout.index_chunks(indexes, ids, texts, cache)
-> layout.persist(indexes). Texts to index: the chunk content (text_model), each child (hierarchical_model,
ids of the child chunks), the question (qa_model). Deleting or disabling: layout.remove_chunks.

Retrieval: retrieval.RetrievalSettings.from_dify(retrieval_model, indexing_technique), the metadata filter
resolved to chunk ids with metadata_filter.allowed_ids, then retrieval.retrieve(indexes, query, settings,
filter_ids, reranker, contents); apps with several datasets merge with retrieval.merge_datasets.
"""
