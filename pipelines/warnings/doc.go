// Package warnings is the warning engine (预警引擎): it reads the raw Kafka
// topics as records arrive, evaluates the warning rules on each
// micro-batch, runs each warning's lifecycle (raised → escalated → lowered
// → cleared, with hysteresis), writes every transition to the Iceberg table
// marts.warnings, serves the active warnings over HTTP (JSON and
// Server-Sent Events) and notifies the responsible unit by webhook.
//
// The rules are DuckDB SQL, not Go: baselines, densities, thresholds,
// levels and forecasts live in rules/*.sql (embedded; warnings.rules_dir
// overrides them), so analysts can read and change them. Go moves the data
// (Kafka → staging tables), keeps what SQL cannot (the lifecycle and its
// hysteresis dwell, notification retries) and makes it durable: the engine's
// DuckDB file holds the rules' state, the lifecycle state, the Kafka offsets
// and an outbox of transitions, all changed in one transaction per
// micro-batch; the outbox reaches marts.warnings with the outbox sequence
// in the snapshot summary, so a restart neither loses nor repeats a
// transition.
//
// Rule files follow one naming scheme, evaluated per micro-batch for each
// input that received records (input = canonical schema name):
//
//	schema.sql            state tables and macros, run once at open
//	<input>.state.sql     statements folding the staged records into state, before the rules
//	<input>.<rule>.sql    one SELECT each, producing signals (see Signal)
//	<input>.after.sql     statements run after the rules (pruning)
//
// The staged records of an input are in the temporary table in_<input>
// (the canonical schema's columns), created anew for each pass so that the
// planner sees how few rows it holds (an emptied table kept the row count of
// every pass before, and joins then hashed the 262,144-row state instead).
// Inputs whose state is per interval (mobile_signal, crowd_counts) are
// evaluated one interval at a time, in order.
//
// Latency at scale 100 (262,144 grid cells an interval, item 1 of the
// issue): what a warning waits for is the rest of its interval's burst, so
// the per-cell state statements are few and proportional to the staged rows
// where DuckDB allows it — mobile_signal.state.sql reads cell_state and
// cell_baseline once per pass into cell_next (new state, previous interval
// and folded baseline row together), then replaces the changed rows (delete
// + insert); the baseline rows are reached through a semi-join on the
// staged cells. The state's WAL is checkpointed by the runner when it has
// caught up (runner.go: idleCheckpoint, 200 ms without records, at most every
// checkpointEvery, 10 s), not by
// DuckDB at whichever commit crosses 16 MB (the threshold is 256 MB), so
// checkpoints fall between bursts. Durability is unchanged: each batch is
// one transaction, committed to the WAL.
//
// Several instances (warnings.partitioned, docs/roles.md): the engine is
// split into units over the input topics' partitions — a cell unit per
// partition and a district unit for the rules that span partitions (unit.go)
// —, each the engine above on a DuckDB file of its own, owned by one
// instance at a time through a Kafka consumer group (group.go), checkpointed
// to the lake's store and restored from there when it moves (checkpoint.go);
// each unit's sink commits what its last checkpoint covers, with the unit's
// sequence and owner generation in the table's summary (sink.go).
package warnings
