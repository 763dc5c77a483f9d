"""Where rows go: the Parquet dataset and QuestDB (DDL, ILP, WAL monitor), and readers of stored rows."""
