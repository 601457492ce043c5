package app

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"citybrain/internal/config"
)

// Role is a part of the platform citybrain serve can run on its own
// (serve --roles; docs/roles.md). The default runs them all in one process.
type Role string

// The roles, in the order serve starts them.
const (
	RoleConnectors Role = "connectors" // sources' connectors (and the simulator) → Kafka
	RoleLakeWriter Role = "lakewriter" // Kafka → the lake, one writer per topic; lake maintenance
	RoleModels     Role = "models"     // the model scheduler (marts.*)
	RoleWarnings   Role = "warnings"   // the warning engine, its sink and notifications
	RoleQuery      Role = "query"      // SQL over HTTP and pgwire, scheduled extracts
	RoleDashboards Role = "dashboards" // the leaders' web pages
)

// AllRoles lists every role.
var AllRoles = []Role{RoleConnectors, RoleLakeWriter, RoleModels, RoleWarnings, RoleQuery, RoleDashboards}

// roleDoc says what each role runs, for --help and errors.
var roleDoc = map[Role]string{
	RoleConnectors: "数据接入 every enabled source's connector, and the simulator when sim.enabled",
	RoleLakeWriter: "入湖 one lake writer per topic, and lake maintenance",
	RoleModels:     "模型 the model scheduler (marts.*)",
	RoleWarnings:   "预警 the warning engine, its sink to marts.warnings, notifications, /api/warnings",
	RoleQuery:      "查询 /api/sql, pgwire (psql, BI tools) and scheduled extracts",
	RoleDashboards: "大屏 the leaders' web dashboards and their API",
}

// serviceRoles is the role of each registered service, by Service.Name.
var serviceRoles = map[string]Role{
	"sim":        RoleConnectors,
	"models":     RoleModels,
	"warnings":   RoleWarnings,
	"response":   RoleWarnings,
	"sql":        RoleQuery,
	"extracts":   RoleQuery,
	"dashboards": RoleDashboards,
	"inspection": RoleDashboards,
}

// ServiceRole is the role a service belongs to (ok false: a service no
// role names, which serve refuses to start rather than run unaccounted).
func ServiceRole(name string) (Role, bool) {
	r, ok := serviceRoles[name]
	return r, ok
}

// Roles is the set of roles one serve process runs.
type Roles map[Role]bool

// Has says whether r is among the roles.
func (rs Roles) Has(r Role) bool { return rs[r] }

// All says whether every role is run (the one-process platform).
func (rs Roles) All() bool {
	for _, r := range AllRoles {
		if !rs[r] {
			return false
		}
	}
	return true
}

// String lists the roles in start order, comma-separated ("all" for all).
func (rs Roles) String() string {
	if rs.All() {
		return "all"
	}
	var out []string
	for _, r := range AllRoles {
		if rs[r] {
			out = append(out, string(r))
		}
	}
	return strings.Join(out, ",")
}

// List is the roles in start order.
func (rs Roles) List() []string {
	var out []string
	for _, r := range AllRoles {
		if rs[r] {
			out = append(out, string(r))
		}
	}
	return out
}

// RolesHelp is the --roles flag's help.
func RolesHelp() string {
	var b strings.Builder
	b.WriteString("roles this process runs, comma-separated (default all) / 本进程运行的角色:")
	for _, r := range AllRoles {
		fmt.Fprintf(&b, "\n  %-11s %s", r, roleDoc[r])
	}
	return b.String()
}

// ParseRoles reads a --roles value: "all" (or empty), or a comma-separated
// list of roles.
func ParseRoles(s string) (Roles, error) {
	rs := Roles{}
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "all") {
		for _, r := range AllRoles {
			rs[r] = true
		}
		return rs, nil
	}
	for _, part := range strings.Split(s, ",") {
		name := Role(strings.ToLower(strings.TrimSpace(part)))
		if name == "" {
			continue
		}
		if _, ok := roleDoc[name]; !ok {
			known := make([]string, 0, len(AllRoles))
			for _, r := range AllRoles {
				known = append(known, string(r))
			}
			return nil, fmt.Errorf("未知角色 unknown role %q: the roles are %s (or all)", part, strings.Join(known, ", "))
		}
		rs[name] = true
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("未指定角色 --roles names no role: give all or some of %v", AllRoles)
	}
	return rs, nil
}

// CheckRoles refuses a subset of roles where the platform's parts could
// not meet: with the embedded broker (it lives and dies with one process)
// or the local catalog (its metadata pointer is one machine's file).
func CheckRoles(rs Roles, cfg config.Config) error {
	if rs.All() {
		return nil
	}
	if len(cfg.Broker.Bootstrap) == 0 {
		return fmt.Errorf("--roles %s 需要共享的 Kafka 集群 needs a shared Kafka cluster: the embedded broker runs inside one process only; set broker.bootstrap to the cluster every instance uses (docs/roles.md)", rs)
	}
	if cfg.Warehouse.Catalog == "" || cfg.Warehouse.Catalog == "local" {
		return fmt.Errorf("--roles %s 需要共享的目录服务 needs a shared catalog: warehouse.catalog is %q, one machine's files; use sql (PostgreSQL) or rest (docs/roles.md, docs/scale-out.md)", rs, firstNonEmpty(cfg.Warehouse.Catalog, "local"))
	}
	return nil
}

// DefaultInstance names this process when --instance is not given:
// <hostname>-<pid>.
func DefaultInstance() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "citybrain"
	}
	return h + "-" + strconv.Itoa(os.Getpid())
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
