// Package models is the model runner: it runs a dbt-compatible SQL project
// (models/project, embedded; or a directory an analyst edits) over the
// lake and materialises its table and incremental models as Iceberg tables
// in the marts namespace, where the query layer, external engines and time
// travel see them.
//
// Why our own runner rather than dbt: the platform is one Go binary with no
// Python at run time; the project is written in the subset of dbt's Jinja
// this package renders (config, ref, source, var, this, is_incremental), so
// the same files still run under dbt-duckdb, which the tests and the
// benchmark use as the reference.
//
// A run pins every input table to its current snapshot, runs the selected
// models in dependency order in a private DuckDB, commits each output with
// warehouse.Lake.Materialize (the snapshot summary names the model, the run
// and the input snapshots) and records the run in marts.model_runs, so any
// past run can be recomputed from the snapshots it read (Runner.Reproduce).
package models
