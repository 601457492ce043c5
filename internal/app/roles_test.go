package app

import (
	"strings"
	"testing"

	"citybrain/internal/config"
)

func TestParseRoles(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "all",
		"all":               "all",
		"ALL":               "all",
		"warnings":          "warnings",
		"query, connectors": "connectors,query",
		"connectors,lakewriter,models,warnings,query,dashboards": "all",
	} {
		rs, err := ParseRoles(in)
		if err != nil || rs.String() != want {
			t.Errorf("ParseRoles(%q) = %v, %v; want %s", in, rs, err, want)
		}
	}
	for _, bad := range []string{"warning", "query,web", ",", " , "} {
		if _, err := ParseRoles(bad); err == nil {
			t.Errorf("ParseRoles(%q) accepted", bad)
		}
	}
	if _, err := ParseRoles("warning"); err == nil || !strings.Contains(err.Error(), "lakewriter") {
		t.Errorf("an unknown role's error does not list the roles: %v", err)
	}
}

func TestCheckRoles(t *testing.T) {
	all, _ := ParseRoles("all")
	some, _ := ParseRoles("warnings")
	cfg := config.Default()
	if err := CheckRoles(all, cfg); err != nil {
		t.Errorf("all roles on the embedded defaults: %v", err)
	}
	if err := CheckRoles(some, cfg); err == nil || !strings.Contains(err.Error(), "broker.bootstrap") {
		t.Errorf("a subset with the embedded broker: %v", err)
	}
	cfg.Broker.Bootstrap = []string{"kafka-1:9092"}
	if err := CheckRoles(some, cfg); err == nil || !strings.Contains(err.Error(), "catalog") {
		t.Errorf("a subset with the local catalog: %v", err)
	}
	cfg.Warehouse.Catalog = "sql"
	if err := CheckRoles(some, cfg); err != nil {
		t.Errorf("a subset with a shared broker and catalog: %v", err)
	}
	for name := range serviceRoles {
		if _, ok := roleDoc[serviceRoles[name]]; !ok {
			t.Errorf("service %s has an unknown role", name)
		}
	}
}
