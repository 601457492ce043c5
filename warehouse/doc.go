// Package warehouse is the lakehouse: Apache Iceberg tables (Parquet data
// files) behind a catalog — on the local disk by default, a SQL catalog on
// PostgreSQL or an Iceberg REST catalog by configuration — and the DuckDB
// query engine that sees every table as a view of its current snapshot.
//
// # Exactly once
//
// Writers commit data files together with the stream position they cover in
// one Iceberg snapshot: the snapshot summary carries the Kafka cluster id,
// the next offset of every partition, and the highest source cursor of every
// stream (State). Commits pin the table's current snapshot, so two writers
// racing on one table cannot both win: the loser reloads State and replays.
//
// # Concurrency between processes
//
// The catalog is the only mutable shared state. Readers (citybrain sql, the
// query layer) open the current metadata and read immutable Parquet files,
// so a CLI can query while a server writes. Files are deleted only by
// snapshot expiry and orphan cleanup, both after a grace period longer than
// any query.
package warehouse
