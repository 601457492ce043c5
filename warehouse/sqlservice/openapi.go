package sqlservice

import (
	"encoding/json"
	"net/http"
)

// openAPI describes citybrain serve's /api routes (OpenAPI 3.0).
func openAPI() map[string]any {
	errResp := map[string]any{"description": "error / 错误", "content": map[string]any{"application/json": map[string]any{
		"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}}
	sqlParams := []any{
		map[string]any{"name": "q", "in": "query", "description": "one read-only SQL statement (DuckDB dialect) / 一条只读 SQL 语句", "schema": map[string]any{"type": "string"}},
		map[string]any{"name": "format", "in": "query", "description": "json (default; capped at sql_access.console_row_cap rows), csv or arrow (Arrow IPC stream); the Accept header works too",
			"schema": map[string]any{"type": "string", "enum": []string{"json", "csv", "arrow"}}},
		map[string]any{"name": "bom", "in": "query", "description": "csv only: 1 prefixes a UTF-8 BOM (Excel)", "schema": map[string]any{"type": "string", "enum": []string{"1"}}},
	}
	sqlResponses := map[string]any{
		"200": map[string]any{"description": "the result, streamed / 查询结果（流式）", "content": map[string]any{
			"application/json":                    map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/SQLResult"}},
			"text/csv":                            map[string]any{"schema": map[string]any{"type": "string"}},
			"application/vnd.apache.arrow.stream": map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}},
		}},
		"400": errResp, "401": errResp, "403": errResp,
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "CityBrain Lakehouse API / 城市大脑数据平台接口",
			"version":     "1",
			"description": "HTTP interface of citybrain serve. SQL runs read-only in the analysts' sandbox with the caller's scope (see docs/sql.md).",
		},
		"security": []any{map[string]any{"basic": []any{}}, map[string]any{"bearer": []any{}}, map[string]any{"session": []any{}}},
		"paths": map[string]any{
			"/healthz": map[string]any{"get": map[string]any{"summary": "liveness / 存活检查", "security": []any{},
				"responses": map[string]any{"200": map[string]any{"description": "ok", "content": map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}}}}},
			"/api/status": map[string]any{"get": map[string]any{"summary": "per-source lag, rejects and last commit, within the caller's scope / 各数据源状态（按权限范围）",
				"responses": map[string]any{"200": map[string]any{"description": "sources", "content": map[string]any{"application/json": map[string]any{
					"schema": map[string]any{"type": "array", "items": map[string]any{"type": "object"}}}}}}}},
			"/api/tables": map[string]any{"get": map[string]any{"summary": "lake tables with snapshot, rows, files, within the caller's scope / 数据湖表（按权限范围）",
				"responses": map[string]any{"200": map[string]any{"description": "tables", "content": map[string]any{"application/json": map[string]any{
					"schema": map[string]any{"type": "array", "items": map[string]any{"type": "object"}}}}}}}},
			"/api/sql": map[string]any{
				"get": map[string]any{"summary": "run one read-only statement / 执行只读 SQL", "parameters": sqlParams, "responses": sqlResponses},
				"post": map[string]any{"summary": "run one read-only statement with parameters ($1, $2 …) / 带参数执行只读 SQL",
					"description": "With a session cookie the X-CSRF-Token header is required.",
					"parameters":  sqlParams[1:],
					"requestBody": map[string]any{"required": true, "content": map[string]any{
						"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/SQLRequest"}},
						"text/plain":       map[string]any{"schema": map[string]any{"type": "string"}},
						"application/x-www-form-urlencoded": map[string]any{"schema": map[string]any{"type": "object",
							"properties": map[string]any{"q": map[string]any{"type": "string"}}}},
					}},
					"responses": sqlResponses},
			},
			"/api/catalog": map[string]any{"get": map[string]any{"summary": "tables and columns you may query, with zh/en descriptions / 可查询的表与字段说明",
				"responses": map[string]any{"200": map[string]any{"description": "catalog", "content": map[string]any{"application/json": map[string]any{
					"schema": map[string]any{"$ref": "#/components/schemas/Catalog"}}}}, "401": errResp}}},
			"/api/token": map[string]any{"post": map[string]any{"summary": "a bearer token for the caller (admins: ?user=NAME) / 获取 API 令牌",
				"parameters": []any{map[string]any{"name": "user", "in": "query", "schema": map[string]any{"type": "string"}}},
				"responses": map[string]any{"200": map[string]any{"description": "token", "content": map[string]any{"application/json": map[string]any{
					"schema": map[string]any{"type": "object", "properties": map[string]any{"token": map[string]any{"type": "string"}, "user": map[string]any{"type": "string"}}}}}},
					"401": errResp, "403": errResp}}},
			"/api/openapi.json": map[string]any{"get": map[string]any{"summary": "this document", "security": []any{},
				"responses": map[string]any{"200": map[string]any{"description": "OpenAPI 3 document"}}}},
		},
		"components": map[string]any{
			"securitySchemes": map[string]any{
				"basic":   map[string]any{"type": "http", "scheme": "basic"},
				"bearer":  map[string]any{"type": "http", "scheme": "bearer", "description": "citybrain users token NAME"},
				"session": map[string]any{"type": "apiKey", "in": "cookie", "name": "citybrain_session"},
			},
			"schemas": map[string]any{
				"Error": map[string]any{"type": "object", "required": []string{"error"}, "properties": map[string]any{
					"error": map[string]any{"type": "string", "description": "中文 and English"},
					"code":  map[string]any{"type": "string", "description": "SQLSTATE, e.g. 42501 refused by the sandbox"}}},
				"SQLRequest": map[string]any{"type": "object", "required": []string{"sql"}, "properties": map[string]any{
					"sql":    map[string]any{"type": "string"},
					"params": map[string]any{"type": "array", "items": map[string]any{"nullable": true}},
					"format": map[string]any{"type": "string", "enum": []string{"json", "csv", "arrow"}}}},
				"SQLResult": map[string]any{"type": "object", "properties": map[string]any{
					"columns":    map[string]any{"type": "array", "items": map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}, "type": map[string]any{"type": "string"}}}},
					"rows":       map[string]any{"type": "array", "items": map[string]any{"type": "array", "items": map[string]any{"nullable": true}}},
					"row_count":  map[string]any{"type": "integer"},
					"truncated":  map[string]any{"type": "boolean", "description": "true when the result had more than sql_access.console_row_cap rows"},
					"elapsed_ms": map[string]any{"type": "number"},
					"error":      map[string]any{"type": "string", "description": "set when the query failed after rows were sent"}}},
				"Catalog": map[string]any{"type": "object", "properties": map[string]any{
					"tables":  map[string]any{"type": "array", "items": map[string]any{"type": "object"}},
					"columns": map[string]any{"type": "array", "items": map[string]any{"type": "object"}}}},
			},
		},
	}
}

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(openAPI())
}
