package testenv

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// IcebergRESTVersion is the Apache Iceberg release whose REST catalog test
// fixture (org.apache.iceberg.rest.RESTCatalogServer from
// org.apache.iceberg:iceberg-open-api:<version>:test-fixtures, the server the
// apache/iceberg-rest-fixture image runs) StartRESTCatalog serves.
const IcebergRESTVersion = "1.10.1"

// restStartTimeout bounds how long StartRESTCatalog waits for /v1/config.
const restStartTimeout = 120 * time.Second

// restLogTail is how many log lines StartRESTCatalog errors include.
const restLogTail = 40

//go:embed rest/pom.xml
var icebergRESTPom []byte

// IcebergRESTJars makes sure the runtime classpath of the Iceberg REST
// catalog fixture (IcebergRESTVersion, with Jetty 11, the shaded Hadoop
// client for HadoopFileIO, iceberg-aws and iceberg-aws-bundle for S3FileIO,
// sqlite-jdbc and slf4j-simple) is in
// CacheDir()/iceberg-rest-<IcebergRESTVersion>/libs and returns that
// directory, suitable for `java -cp '<libsDir>/*'`.
//
// The first call runs `mvn -q -B dependency:copy-dependencies` on the embedded
// rest/pom.xml (Maven must be on PATH and reach Maven Central; artifacts land
// in Maven's default local repository); later calls return at once. It is
// safe to call from several processes at once: an exclusive flock on
// CacheDir()/iceberg-rest-<version>.lock serialises fetches, jars are copied
// to a temporary directory renamed into place, and a marker file records the
// hash of the pom and version (a change triggers a fresh fetch). ctx bounds
// waiting for the lock and the Maven run.
func IcebergRESTJars(ctx context.Context) (libsDir string, err error) {
	return mavenJars{dir: "iceberg-rest-" + IcebergRESTVersion, what: "Iceberg REST catalog " + IcebergRESTVersion + " jars",
		pom: icebergRESTPom, key: IcebergRESTVersion,
		args: []string{"-Diceberg.version=" + IcebergRESTVersion, "-DincludeScope=runtime"},
		expect: []string{"iceberg-open-api-" + IcebergRESTVersion + "-test-fixtures.jar",
			"iceberg-aws-" + IcebergRESTVersion + ".jar", "iceberg-aws-bundle-" + IcebergRESTVersion + ".jar"}}.fetch(ctx)
}

// RESTCatalog is a running Apache Iceberg REST catalog (the upstream test
// fixture RESTCatalogServer) backed by a JdbcCatalog on SQLite, with
// HadoopFileIO on the local file system (StartRESTCatalog) or S3FileIO on an
// S3-compatible store (StartRESTCatalogS3).
// Its methods are safe for concurrent use.
type RESTCatalog struct {
	dir       string
	warehouse string
	port      int
	logPath   string
	cmd       *exec.Cmd
	exited    chan struct{} // closed when the JVM has exited
	waitErr   error         // valid after exited is closed

	stopOnce sync.Once
	stopErr  error
}

// StartRESTCatalog starts an Iceberg REST catalog server (IcebergRESTVersion)
// on a free port, fetching its jars first if needed (see IcebergRESTJars).
// dir is created if needed and holds the SQLite catalog database
// (dir/catalog.db), the warehouse (dir/warehouse, see Warehouse) and the
// server log (dir/rest.log, appended to). The JVM runs in its own process
// group. StartRESTCatalog returns once GET /v1/config answers 200, or fails
// after 120 s (or when ctx ends) with the last 40 lines of the log; on error
// nothing is left running. The fixture accepts no authentication and binds
// all interfaces (it has no bind-address setting); clients should use URI(),
// which is on 127.0.0.1. The caller must call Stop (e.g. via t.Cleanup).
// java (17+) must be on PATH.
func StartRESTCatalog(ctx context.Context, dir string) (*RESTCatalog, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	warehouse := filepath.Join(dir, "warehouse")
	if err := os.MkdirAll(warehouse, 0o755); err != nil {
		return nil, err
	}
	return startREST(ctx, dir, warehouse, nil)
}

// RESTS3Options put the warehouse of an Iceberg REST catalog on an
// S3-compatible object store (StartRESTCatalogS3), and say how clients reach
// that store (ClientProperties).
type RESTS3Options struct {
	// Endpoint is the S3 endpoint URL, e.g. SeaweedFS.Endpoint()
	// (http://127.0.0.1:PORT). Requests are path-style.
	Endpoint string
	// Bucket holds the warehouse; it must exist before tables are made.
	Bucket string
	// Prefix is the key prefix of the warehouse in the bucket, without
	// leading or trailing slashes ("" for the bucket's root).
	Prefix string
	// AccessKey and SecretKey are the static S3 credentials (for SeaweedFS:
	// SeaweedAccessKey, SeaweedSecretKey).
	AccessKey, SecretKey string
	// Region is the signing region; "" means us-east-1. It must be set
	// explicitly for Java clients: without it the AWS SDK walks its region
	// provider chain, which ends at the EC2 metadata service.
	Region string
}

// Validate reports a missing endpoint, bucket or credential, or a prefix
// with a leading or trailing slash.
func (o RESTS3Options) Validate() error {
	switch {
	case o.Endpoint == "":
		return errors.New("testenv: RESTS3Options.Endpoint is empty")
	case o.Bucket == "" || strings.ContainsAny(o.Bucket, "/"):
		return fmt.Errorf("testenv: RESTS3Options.Bucket %q is not a bucket name", o.Bucket)
	case strings.HasPrefix(o.Prefix, "/") || strings.HasSuffix(o.Prefix, "/"):
		return fmt.Errorf("testenv: RESTS3Options.Prefix %q must not start or end with a slash", o.Prefix)
	case o.AccessKey == "" || o.SecretKey == "":
		return errors.New("testenv: RESTS3Options needs AccessKey and SecretKey")
	}
	return nil
}

// Warehouse returns the warehouse URI, s3://<bucket>/<prefix> (s3://<bucket>
// without a prefix). The catalog places a table at
// <warehouse>/<namespace levels joined by />/<table>.
func (o RESTS3Options) Warehouse() string {
	if o.Prefix == "" {
		return "s3://" + o.Bucket
	}
	return "s3://" + o.Bucket + "/" + o.Prefix
}

func (o RESTS3Options) region() string {
	if o.Region == "" {
		return "us-east-1"
	}
	return o.Region
}

// ClientProperties returns the catalog properties an Iceberg client of a
// catalog started by StartRESTCatalogS3 must set besides "uri" (and, for
// Spark, "type"=rest), because the fixture's GET /v1/config vends no
// defaults or overrides and its table responses carry no storage
// configuration:
//
//	io-impl                org.apache.iceberg.aws.s3.S3FileIO   (Java; iceberg-go picks its IO by the s3:// scheme)
//	s3.endpoint            Endpoint                             (Java and iceberg-go)
//	s3.path-style-access   true                                 (Java; iceberg-go goes path-style whenever s3.endpoint is set)
//	s3.access-key-id       AccessKey                            (Java and iceberg-go)
//	s3.secret-access-key   SecretKey                            (Java and iceberg-go)
//	client.region          Region, default us-east-1            (Java; iceberg-go reads s3.region, then client.region)
//
// The map is new on every call. Spark takes each as
// spark.sql.catalog.<name>.<key> (RunSpark does so).
func (o RESTS3Options) ClientProperties() map[string]string {
	return map[string]string{
		"io-impl":              "org.apache.iceberg.aws.s3.S3FileIO",
		"s3.endpoint":          o.Endpoint,
		"s3.path-style-access": "true",
		"s3.access-key-id":     o.AccessKey,
		"s3.secret-access-key": o.SecretKey,
		"client.region":        o.region(),
	}
}

// StartRESTCatalogS3 is StartRESTCatalog with the warehouse on S3: the
// catalog's metadata pointers stay in SQLite (dir/catalog.db), while table
// metadata, manifests and data files go through Iceberg's S3FileIO to
// s3.Warehouse() (s3://<bucket>/<prefix>; the bucket must exist). Table
// locations it hands out are s3://<bucket>/<prefix>/<namespace>/<table>.
// The server's own S3 settings are those of s3.ClientProperties(); clients
// must set the same (the fixture vends none of them). Stop, restarts and
// errors are as for StartRESTCatalog.
func StartRESTCatalogS3(ctx context.Context, dir string, s3 RESTS3Options) (*RESTCatalog, error) {
	if err := s3.Validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// RCKUtils.environmentCatalogConfig: CATALOG_ is dropped, "__" becomes
	// "-", "_" becomes "." and the name is lower-cased.
	props := s3.ClientProperties()
	env := []string{}
	for _, k := range slices.Sorted(maps.Keys(props)) {
		name := strings.ToUpper(strings.NewReplacer("-", "__", ".", "_").Replace(k))
		env = append(env, "CATALOG_"+name+"="+props[k])
	}
	return startREST(ctx, dir, s3.Warehouse(), env)
}

// startREST starts the fixture with CATALOG_WAREHOUSE=warehouse and the
// extra CATALOG_* variables in env, retrying on a port taken meanwhile.
func startREST(ctx context.Context, dir, warehouse string, env []string) (*RESTCatalog, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("testenv: java (17+) is needed for the Iceberg REST catalog (%v); run make test-deps (apt-get install default-jdk-headless)", err)
	}
	libs, err := IcebergRESTJars(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, restStartTimeout)
	defer cancel()

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		r, err := startRESTOnce(ctx, java, libs, dir, warehouse, env)
		if err == nil {
			return r, nil
		}
		lastErr = err
		var bind *restBindError
		if !errors.As(err, &bind) || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// restBindError marks a start that failed because the port was taken.
type restBindError struct{ error }

func startRESTOnce(ctx context.Context, java, libs, dir, warehouse string, extraEnv []string) (*RESTCatalog, error) {
	port, err := pickLoopbackPort()
	if err != nil {
		return nil, err
	}
	r := &RESTCatalog{
		dir:       dir,
		warehouse: warehouse,
		port:      port,
		logPath:   filepath.Join(dir, "rest.log"),
		exited:    make(chan struct{}),
	}
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child keeps its own descriptor
	fmt.Fprintf(logf, "=== testenv: starting Iceberg REST catalog %s on port %d at %s\n",
		IcebergRESTVersion, port, time.Now().Format(time.RFC3339))

	// The fixture reads catalog properties from CATALOG_* variables
	// (CATALOG_FOO_BAR -> foo.bar, __ -> -); drop inherited ones, and the
	// caller's AWS_* ones, which S3FileIO's SDK would read (endpoint,
	// profile) where the catalog properties leave a gap.
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CATALOG_") && !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"CATALOG_WAREHOUSE="+warehouse,
		"CATALOG_URI=jdbc:sqlite:file:"+filepath.Join(dir, "catalog.db"),
		"CATALOG_REST_PORT="+strconv.Itoa(port),
	)
	env = append(env, extraEnv...)
	r.cmd = exec.Command(java,
		"-Xms64m", "-Xmx768m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Djava.net.preferIPv4Stack=true",
		"-cp", filepath.Join(libs, "*"),
		"org.apache.iceberg.rest.RESTCatalogServer")
	r.cmd.Dir = dir
	r.cmd.Env = env
	r.cmd.Stdout = logf
	r.cmd.Stderr = logf
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("testenv: starting %s: %v", java, err)
	}
	go func() {
		r.waitErr = r.cmd.Wait()
		close(r.exited)
	}()

	client := &http.Client{Timeout: 2 * time.Second}
	url := r.URI() + "/v1/config"
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		select {
		case <-r.exited:
			tail := logTailLines(r.logPath, restLogTail)
			err := fmt.Errorf("testenv: Iceberg REST catalog exited before serving (%v); %s (tail):\n%s", r.waitErr, r.logPath, tail)
			if strings.Contains(tail, "Address already in use") || strings.Contains(tail, "BindException") {
				return nil, &restBindError{err}
			}
			return nil, err
		case <-ctx.Done():
			r.kill()
			return nil, fmt.Errorf("testenv: Iceberg REST catalog not ready at %s: %v; %s (tail):\n%s",
				url, ctx.Err(), r.logPath, logTailLines(r.logPath, restLogTail))
		case <-tick.C:
		}
	}
}

// URI returns the catalog's base URL, http://127.0.0.1:PORT (no trailing
// slash, no /v1 prefix), as Iceberg REST clients expect it.
func (r *RESTCatalog) URI() string { return "http://127.0.0.1:" + strconv.Itoa(r.port) }

// Port returns the TCP port the catalog listens on.
func (r *RESTCatalog) Port() int { return r.port }

// Warehouse returns where the catalog places namespaces and tables: for
// StartRESTCatalog the absolute local path of dir/warehouse (table locations
// it hands out are plain paths below it, no file:// scheme); for
// StartRESTCatalogS3 the URI s3://<bucket>/<prefix>.
func (r *RESTCatalog) Warehouse() string { return r.warehouse }

// LogPath returns the path of the server log, dir/rest.log.
func (r *RESTCatalog) LogPath() string { return r.logPath }

// Stop sends SIGTERM to the server's process group, waits up to 15 s for it
// to exit, then SIGKILLs the group. A server that exits on SIGTERM counts as
// a clean stop. Catalog state and the warehouse stay in
// dir. Calling Stop again returns the first result.
func (r *RESTCatalog) Stop() error {
	r.stopOnce.Do(func() {
		select {
		case <-r.exited:
			r.stopErr = fmt.Errorf("testenv: Iceberg REST catalog had already exited: %v; %s (tail):\n%s",
				r.waitErr, r.logPath, logTailLines(r.logPath, restLogTail))
			return
		default:
		}
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(15 * time.Second):
			r.kill()
			r.stopErr = fmt.Errorf("testenv: Iceberg REST catalog did not stop on SIGTERM within 15s; killed")
		}
	})
	return r.stopErr
}

// kill SIGKILLs the process group and waits for the JVM to go.
func (r *RESTCatalog) kill() {
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
	}
}
