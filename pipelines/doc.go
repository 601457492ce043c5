// Package pipelines holds the stream jobs that move data out of Kafka:
// lakewriter (raw.<source> topics into the lake's Iceberg tables, exactly
// once). Outbound pipelines — scheduled extracts and their scheduler — live
// here too as they are added.
package pipelines
