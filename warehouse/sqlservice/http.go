package sqlservice

import (
	"bufio"
	"context"
	"database/sql/driver"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/duckdb/duckdb-go/v2"

	"citybrain/internal/auth"
	"citybrain/warehouse/sqlaccess"
)

// Handler is the HTTP SQL API:
//
//	GET|POST /api/sql    run one read-only statement; ?q= (or form field q,
//	                     or a JSON body {"sql": "…", "params": [...]}),
//	                     ?format=json|csv|arrow (or the Accept header)
//	GET /api/catalog     the tables and columns the user may query, with zh/en descriptions
//
// Callers authenticate with the web session cookie (POST then needs the
// X-CSRF-Token header), a bearer token (citybrain users token) or HTTP basic
// auth; they get exactly the tables and rows their scope allows, as over the
// wire protocol. JSON stops at RowCap rows ("truncated": true); CSV and
// Arrow stream every row.
type Handler struct {
	Access *sqlaccess.Access
	Auth   *auth.Store
	RowCap int
}

type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"`
}

func writeError(w http.ResponseWriter, status int, err error) {
	code := ""
	var se interface{ SQLState() string }
	if errors.As(err, &se) {
		code = se.SQLState()
		if code == "42501" {
			status = http.StatusForbidden
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(apiError{Error: err.Error(), Code: code})
}

func (h *Handler) user(w http.ResponseWriter, r *http.Request) (auth.User, bool) {
	u, err := h.Auth.FromRequest(r)
	if name, pw, ok := r.BasicAuth(); err != nil && ok {
		// A user added or a password changed since serve started.
		u, err = h.Access.Users().Verify(name, pw)
	}
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="citybrain", charset="UTF-8"`)
		writeError(w, http.StatusUnauthorized, fmt.Errorf("%v: log in to the web console, or pass a bearer token (citybrain users token NAME) or basic auth", err))
		return auth.User{}, false
	}
	return u, true
}

type sqlRequest struct {
	SQL    string `json:"sql"`
	Params []any  `json:"params"`
	Format string `json:"format"`
}

func readRequest(r *http.Request) (sqlRequest, error) {
	var req sqlRequest
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		dec := json.NewDecoder(io.LimitReader(r.Body, 4<<20))
		dec.UseNumber()
		if err := dec.Decode(&req); err != nil {
			return req, fmt.Errorf("request body: %v (want {\"sql\": \"select …\", \"params\": [...]}) / 请求体格式错误", err)
		}
	} else if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		b, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		if err != nil {
			return req, err
		}
		req.SQL = string(b)
	} else {
		req.SQL = r.FormValue("q")
	}
	if req.SQL == "" {
		req.SQL = r.URL.Query().Get("q")
	}
	if f := r.URL.Query().Get("format"); f != "" {
		req.Format = f
	}
	if req.Format == "" {
		accept := r.Header.Get("Accept")
		switch {
		case strings.Contains(accept, "application/vnd.apache.arrow.stream"):
			req.Format = "arrow"
		case strings.Contains(accept, "text/csv"):
			req.Format = "csv"
		default:
			req.Format = "json"
		}
	}
	for i, p := range req.Params {
		if n, ok := p.(json.Number); ok {
			if v, err := n.Int64(); err == nil {
				req.Params[i] = v
			} else if f, err := n.Float64(); err == nil {
				req.Params[i] = f
			}
		}
		switch req.Params[i].(type) {
		case nil, string, bool, int64, float64:
		default:
			return req, fmt.Errorf("params[%d]: want a string, number, boolean or null", i)
		}
	}
	if req.SQL == "" {
		return req, errors.New("missing SQL: pass ?q=select… or POST {\"sql\": \"select …\"} / 缺少查询语句")
	}
	return req, nil
}

func (h *Handler) serveSQL(w http.ResponseWriter, r *http.Request) {
	u, ok := h.user(w, r)
	if !ok {
		return
	}
	req, err := readRequest(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if req.Format != "json" && req.Format != "csv" && req.Format != "arrow" {
		writeError(w, http.StatusBadRequest, fmt.Errorf("format %q: want json, csv or arrow", req.Format))
		return
	}
	ctx := r.Context()
	sess, err := h.Access.Open(ctx, u, "http", r.RemoteAddr)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	defer sess.Close()
	st, err := sess.Prepare(ctx, req.SQL)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	defer st.Close()
	if st.Empty {
		writeError(w, http.StatusBadRequest, errors.New("empty statement / 空语句"))
		return
	}
	if len(req.Params) != len(st.Params) {
		writeError(w, http.StatusBadRequest, fmt.Errorf("the statement has %d parameter(s), params has %d", len(st.Params), len(req.Params)))
		return
	}
	start := time.Now()
	rows, err := st.Query(ctx, req.Params)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	var werr error
	switch req.Format {
	case "json":
		werr = h.writeJSON(w, rows, start)
	case "csv":
		werr = writeCSV(w, rows, r.URL.Query().Get("bom") == "1")
	case "arrow":
		werr = writeArrow(w, rows)
	}
	rows.Close(werr)
}

func (h *Handler) writeJSON(w http.ResponseWriter, rows *sqlaccess.Rows, start time.Time) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	bw := bufio.NewWriterSize(w, 64<<10)
	fl, _ := w.(http.Flusher)
	bw.WriteString(`{"columns":[`)
	for i, c := range rows.Columns {
		if i > 0 {
			bw.WriteByte(',')
		}
		b, _ := json.Marshal(map[string]string{"name": c.Name, "type": typeName(c.Type)})
		bw.Write(b)
	}
	bw.WriteString(`],"rows":[`)
	dest := make([]driver.Value, len(rows.Columns))
	var n int
	var qerr error
	truncated := false
	for {
		if err := rows.Next(dest); err != nil {
			if err != io.EOF && err.Error() != "EOF" {
				qerr = err
			}
			break
		}
		if n >= h.RowCap {
			truncated = true
			break
		}
		if n > 0 {
			bw.WriteByte(',')
		}
		bw.WriteByte('[')
		for i, v := range dest {
			if i > 0 {
				bw.WriteByte(',')
			}
			b, err := json.Marshal(jsonValue(v))
			if err != nil {
				b = []byte(strconv.Quote(fmt.Sprint(v)))
			}
			bw.Write(b)
		}
		bw.WriteByte(']')
		n++
		if n%1000 == 0 && fl != nil {
			bw.Flush()
			fl.Flush()
		}
	}
	fmt.Fprintf(bw, `],"row_count":%d,"truncated":%t,"elapsed_ms":%.1f`, n, truncated, float64(time.Since(start).Microseconds())/1000)
	if qerr != nil {
		b, _ := json.Marshal(qerr.Error())
		fmt.Fprintf(bw, `,"error":%s`, b)
	}
	bw.WriteString("}\n")
	if err := bw.Flush(); err != nil {
		return err
	}
	return qerr
}

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

// jsonValue makes a DuckDB value JSON-encodable: instants in Beijing time
// (RFC 3339), decimals and huge integers as exact numbers.
func jsonValue(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.In(shanghai).Format(time.RFC3339Nano)
	case duckdb.Decimal:
		return json.Number(decimalString(x.Value, int(x.Scale)))
	case *big.Int:
		return json.Number(x.String())
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return strconv.FormatFloat(float64(x), 'g', -1, 32)
		}
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case duckdb.UUID:
		return fmt.Sprintf("%x-%x-%x-%x-%x", x[0:4], x[4:6], x[6:8], x[8:10], x[10:16])
	case duckdb.Interval:
		return map[string]any{"months": x.Months, "days": x.Days, "micros": x.Micros}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	case duckdb.Map:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonValue(e)
		}
		return out
	}
	return v
}

func decimalString(v *big.Int, scale int) string {
	if v == nil {
		return "0"
	}
	s := new(big.Int).Abs(v).String()
	if scale > 0 {
		for len(s) <= scale {
			s = "0" + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	}
	if v.Sign() < 0 {
		s = "-" + s
	}
	return s
}

func textValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case time.Time:
		return x.In(shanghai).Format("2006-01-02 15:04:05.999999-07:00")
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	j := jsonValue(v)
	if s, ok := j.(string); ok {
		return s
	}
	if n, ok := j.(json.Number); ok {
		return string(n)
	}
	switch j.(type) {
	case []any, map[string]any:
		b, _ := json.Marshal(j)
		return string(b)
	}
	return fmt.Sprint(j)
}

func writeCSV(w http.ResponseWriter, rows *sqlaccess.Rows, bom bool) error {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="query.csv"`)
	bw := bufio.NewWriterSize(w, 64<<10)
	if bom {
		bw.WriteString("\ufeff")
	}
	cw := csv.NewWriter(bw)
	rec := make([]string, len(rows.Columns))
	for i, c := range rows.Columns {
		rec[i] = c.Name
	}
	cw.Write(rec)
	dest := make([]driver.Value, len(rows.Columns))
	for {
		if err := rows.Next(dest); err != nil {
			cw.Flush()
			bw.Flush()
			if err == io.EOF || err.Error() == "EOF" {
				return cw.Error()
			}
			// Headers are sent: the error ends the body, visibly.
			fmt.Fprintf(w, "\n# ERROR: %v\n", err)
			return err
		}
		for i, v := range dest {
			rec[i] = textValue(v)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
}

// arrowType maps a DuckDB column to Arrow; nested and exotic types travel
// as JSON text.
func arrowType(ti duckdb.TypeInfo) arrow.DataType {
	if ti == nil {
		return arrow.BinaryTypes.String
	}
	switch ti.InternalType() {
	case duckdb.TYPE_BOOLEAN:
		return arrow.FixedWidthTypes.Boolean
	case duckdb.TYPE_TINYINT:
		return arrow.PrimitiveTypes.Int8
	case duckdb.TYPE_SMALLINT:
		return arrow.PrimitiveTypes.Int16
	case duckdb.TYPE_INTEGER:
		return arrow.PrimitiveTypes.Int32
	case duckdb.TYPE_BIGINT:
		return arrow.PrimitiveTypes.Int64
	case duckdb.TYPE_UTINYINT:
		return arrow.PrimitiveTypes.Uint8
	case duckdb.TYPE_USMALLINT:
		return arrow.PrimitiveTypes.Uint16
	case duckdb.TYPE_UINTEGER:
		return arrow.PrimitiveTypes.Uint32
	case duckdb.TYPE_UBIGINT:
		return arrow.PrimitiveTypes.Uint64
	case duckdb.TYPE_FLOAT:
		return arrow.PrimitiveTypes.Float32
	case duckdb.TYPE_DOUBLE:
		return arrow.PrimitiveTypes.Float64
	case duckdb.TYPE_DATE:
		return arrow.FixedWidthTypes.Date32
	case duckdb.TYPE_TIMESTAMP, duckdb.TYPE_TIMESTAMP_S, duckdb.TYPE_TIMESTAMP_MS, duckdb.TYPE_TIMESTAMP_NS:
		return &arrow.TimestampType{Unit: arrow.Microsecond}
	case duckdb.TYPE_TIMESTAMP_TZ:
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	case duckdb.TYPE_BLOB:
		return arrow.BinaryTypes.Binary
	case duckdb.TYPE_DECIMAL:
		if d, ok := ti.Details().(*duckdb.DecimalDetails); ok {
			return &arrow.Decimal128Type{Precision: int32(d.Width), Scale: int32(d.Scale)}
		}
	}
	return arrow.BinaryTypes.String
}

func writeArrow(w http.ResponseWriter, rows *sqlaccess.Rows) error {
	fields := make([]arrow.Field, len(rows.Columns))
	for i, c := range rows.Columns {
		fields[i] = arrow.Field{Name: c.Name, Type: arrowType(c.Type), Nullable: true}
	}
	schema := arrow.NewSchema(fields, nil)
	w.Header().Set("Content-Type", "application/vnd.apache.arrow.stream")
	bw := bufio.NewWriterSize(w, 256<<10)
	iw := ipc.NewWriter(bw, ipc.WithSchema(schema))
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	dest := make([]driver.Value, len(rows.Columns))
	n := 0
	emit := func() error {
		rec := b.NewRecordBatch()
		defer rec.Release()
		return iw.Write(rec)
	}
	var qerr error
	for {
		if err := rows.Next(dest); err != nil {
			if err != io.EOF && err.Error() != "EOF" {
				qerr = err
			}
			break
		}
		for i, v := range dest {
			appendArrow(b.Field(i), v)
		}
		if n++; n%8192 == 0 {
			if err := emit(); err != nil {
				return err
			}
		}
	}
	if n%8192 != 0 || n == 0 {
		if err := emit(); err != nil {
			return err
		}
	}
	if err := iw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return qerr
}

func appendArrow(b array.Builder, v any) {
	if v == nil {
		b.AppendNull()
		return
	}
	switch bb := b.(type) {
	case *array.BooleanBuilder:
		bb.Append(v.(bool))
	case *array.Int8Builder:
		bb.Append(v.(int8))
	case *array.Int16Builder:
		bb.Append(v.(int16))
	case *array.Int32Builder:
		bb.Append(v.(int32))
	case *array.Int64Builder:
		bb.Append(v.(int64))
	case *array.Uint8Builder:
		bb.Append(v.(uint8))
	case *array.Uint16Builder:
		bb.Append(v.(uint16))
	case *array.Uint32Builder:
		bb.Append(v.(uint32))
	case *array.Uint64Builder:
		bb.Append(v.(uint64))
	case *array.Float32Builder:
		bb.Append(v.(float32))
	case *array.Float64Builder:
		bb.Append(v.(float64))
	case *array.Date32Builder:
		t := v.(time.Time)
		bb.Append(arrow.Date32FromTime(time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)))
	case *array.TimestampBuilder:
		bb.Append(arrow.Timestamp(v.(time.Time).UnixMicro()))
	case *array.BinaryBuilder:
		bb.Append(v.([]byte))
	case *array.Decimal128Builder:
		d := v.(duckdb.Decimal)
		bb.Append(decimal128.FromBigInt(d.Value))
	case *array.StringBuilder:
		bb.Append(textValue(v))
	default:
		b.AppendNull()
	}
}

// typeName is a column's DuckDB type name for the JSON header.
func typeName(ti duckdb.TypeInfo) string {
	if ti == nil {
		return "NULL"
	}
	switch d := ti.Details().(type) {
	case *duckdb.DecimalDetails:
		return fmt.Sprintf("DECIMAL(%d,%d)", d.Width, d.Scale)
	case *duckdb.ListDetails:
		return typeName(d.Child) + "[]"
	}
	if a := ti.Alias(); a != "" {
		return a
	}
	return typeNames[ti.InternalType()]
}

var typeNames = map[duckdb.Type]string{
	duckdb.TYPE_BOOLEAN: "BOOLEAN", duckdb.TYPE_TINYINT: "TINYINT", duckdb.TYPE_SMALLINT: "SMALLINT", duckdb.TYPE_INTEGER: "INTEGER",
	duckdb.TYPE_BIGINT: "BIGINT", duckdb.TYPE_UTINYINT: "UTINYINT", duckdb.TYPE_USMALLINT: "USMALLINT", duckdb.TYPE_UINTEGER: "UINTEGER",
	duckdb.TYPE_UBIGINT: "UBIGINT", duckdb.TYPE_HUGEINT: "HUGEINT", duckdb.TYPE_FLOAT: "FLOAT", duckdb.TYPE_DOUBLE: "DOUBLE",
	duckdb.TYPE_VARCHAR: "VARCHAR", duckdb.TYPE_BLOB: "BLOB", duckdb.TYPE_DATE: "DATE", duckdb.TYPE_TIME: "TIME",
	duckdb.TYPE_TIMESTAMP: "TIMESTAMP", duckdb.TYPE_TIMESTAMP_TZ: "TIMESTAMPTZ", duckdb.TYPE_INTERVAL: "INTERVAL",
	duckdb.TYPE_UUID: "UUID", duckdb.TYPE_STRUCT: "STRUCT", duckdb.TYPE_MAP: "MAP", duckdb.TYPE_ENUM: "ENUM",
}

// serveToken issues a bearer token: for the caller, or (admins) for
// ?user=NAME.
func (h *Handler) serveToken(w http.ResponseWriter, r *http.Request) {
	u, ok := h.user(w, r)
	if !ok {
		return
	}
	name := u.Name
	if q := r.URL.Query().Get("user"); q != "" && q != u.Name {
		if u.Role != auth.RoleAdmin {
			writeError(w, http.StatusForbidden, errors.New("only an admin may get a token for another user / 只有管理员可以为其他用户获取令牌"))
			return
		}
		name = q
	}
	tok, err := h.Auth.NewToken(name)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%v (a user added after serve started needs a restart of serve for tokens)", err))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]string{"token": tok, "user": name})
}

func (h *Handler) serveCatalog(w http.ResponseWriter, r *http.Request) {
	u, ok := h.user(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	cat, err := h.Access.Catalog(ctx, u)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(cat)
}
