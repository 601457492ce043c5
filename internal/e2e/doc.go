// Package e2e holds the end-to-end tests of the spine: the citybrain binary
// (built once per test run) against the embedded broker and a real Apache
// Kafka, with the real Guanyuan weather file, SIGKILLs at random moments,
// a wiped broker, the SQL and REST catalogs, and pyiceberg reading the lake.
package e2e
