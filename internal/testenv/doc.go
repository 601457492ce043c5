// Package testenv starts the real services that integration tests talk to
// (Apache Kafka, PostgreSQL, an Iceberg REST catalog, Python with pyiceberg),
// fetching them from the package registries into one cache directory.
package testenv
