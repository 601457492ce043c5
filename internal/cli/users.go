package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"citybrain/internal/auth"
)

func usersCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage users, roles and passwords / 用户与权限管理",
		Long: `users manages the platform's accounts (the users file, auth.users_file under
data_dir): admin, leader, analyst and department users. Passwords are stored
only as SCRAM-SHA-256 verifiers; the same password logs in to the web
dashboards, the HTTP API and PostgreSQL clients (psql -U NAME).

A running citybrain serve picks up added users and changed passwords on the
next login (it re-reads the file when it changes).

  citybrain users add wang --role analyst
  citybrain users add water1 --role department --department water
  citybrain users list
  citybrain users passwd wang
  citybrain users token wang        (a bearer token for /api/sql, from the running serve)
  citybrain users delete wang`,
	}
	cmd.AddCommand(usersAddCmd(g), usersListCmd(g), usersPasswdCmd(g), usersDeleteCmd(g), usersTokenCmd(g))
	return cmd
}

func openUsers(g *globals, cmd *cobra.Command) (*auth.Store, error) {
	cfg, _, err := g.load(cmd)
	if err != nil {
		return nil, err
	}
	return auth.Open(cfg.Auth, cfg.DataDir)
}

// readPassword reads a password from stdin (--password-stdin: the first
// line) or prompts twice on the terminal without echo.
func readPassword(cmd *cobra.Command, g *globals, fromStdin, confirm bool) (string, error) {
	in := cmd.InOrStdin()
	if fromStdin {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("--password-stdin: no password on standard input / 标准输入中没有密码")
		}
		return pw, nil
	}
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("no terminal to prompt for the password: pass it with --password-stdin / 请用 --password-stdin 提供密码")
	}
	fmt.Fprint(g.errOut, "Password 密码: ")
	pw, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(g.errOut)
	if err != nil {
		return "", err
	}
	if confirm {
		fmt.Fprint(g.errOut, "Again 再次输入: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(g.errOut)
		if err != nil {
			return "", err
		}
		if string(again) != string(pw) {
			return "", errors.New("the passwords differ / 两次输入的密码不一致")
		}
	}
	return string(pw), nil
}

func usersAddCmd(g *globals) *cobra.Command {
	var role, dept, person string
	var stdin bool
	cmd := &cobra.Command{
		Use:   "add NAME --role admin|leader|analyst|department [--department D] [--person ID]",
		Short: "Add a user / 添加用户",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openUsers(g, cmd)
			if err != nil {
				return err
			}
			if role == "" {
				return errors.New("--role is required: admin, leader, analyst or department / 请指定角色")
			}
			if auth.Role(role) == auth.RoleDepartment && dept == "" {
				var names []string
				for _, d := range s.Config().Departments {
					names = append(names, d.Name)
				}
				return fmt.Errorf("a department user needs --department (one of: %s) / 部门用户需要指定部门", strings.Join(names, ", "))
			}
			pw, err := readPassword(cmd, g, stdin, true)
			if err != nil {
				return err
			}
			if err := s.Add(args[0], pw, auth.Role(role), dept); err != nil {
				return err
			}
			if person != "" {
				if err := s.Update(args[0], func(u *auth.User) error { u.PersonID = person; return nil }); err != nil {
					return err
				}
			}
			fmt.Fprintf(g.out, "added %s (%s%s) / 已添加用户\n", args[0], role, map[bool]string{true: ", " + dept}[dept != ""])
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "admin, leader, analyst or department")
	cmd.Flags().StringVar(&dept, "department", "", "department (auth.departments) of a department user")
	cmd.Flags().StringVar(&person, "person", "", "person id in raw.role_holders: the responder app (/respond/) shows this person's emergency tasks / 应急责任人编号")
	cmd.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from the first line of standard input")
	return cmd
}

func usersListCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users / 列出用户",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openUsers(g, cmd)
			if err != nil {
				return err
			}
			us := s.List()
			if asJSON {
				return printJSON(g.out, us)
			}
			tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "user 用户\trole 角色\tdepartment 部门\tdisabled\tcreated 创建时间")
			for _, u := range us {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\n", u.Name, u.Role, u.Department, u.Disabled, u.Created.Format(time.DateTime))
			}
			if len(us) == 0 {
				fmt.Fprintln(tw, "(no users: citybrain users add NAME --role admin)")
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON output")
	return cmd
}

func usersPasswdCmd(g *globals) *cobra.Command {
	var stdin bool
	cmd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Set a user's password / 修改密码",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openUsers(g, cmd)
			if err != nil {
				return err
			}
			if _, ok := s.Get(args[0]); !ok {
				return fmt.Errorf("%w: %s (see citybrain users list)", auth.ErrNoUser, args[0])
			}
			pw, err := readPassword(cmd, g, stdin, true)
			if err != nil {
				return err
			}
			if err := s.SetPassword(args[0], pw); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "password of %s changed / 密码已修改\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from the first line of standard input")
	return cmd
}

func usersDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user / 删除用户",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openUsers(g, cmd)
			if err != nil {
				return err
			}
			if err := s.Delete(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "deleted %s / 已删除用户\n", args[0])
			return nil
		},
	}
}

func usersTokenCmd(g *globals) *cobra.Command {
	var stdin bool
	var server string
	cmd := &cobra.Command{
		Use:   "token NAME",
		Short: "Get an API bearer token from the running serve / 获取 API 令牌",
		Long: `token logs in to the running citybrain serve as NAME (password prompted, or
--password-stdin) and prints a bearer token for the HTTP API:

  curl -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8080/api/sql?q=select+1'

Tokens live in serve's memory: they end when serve restarts or the user's
password changes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, _, err := g.load(cmd)
			if err != nil {
				return err
			}
			if server == "" {
				server = "http://" + cfg.HTTP.Addr
			}
			pw, err := readPassword(cmd, g, stdin, false)
			if err != nil {
				return err
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, strings.TrimSuffix(server, "/")+"/api/token", nil)
			if err != nil {
				return err
			}
			req.SetBasicAuth(args[0], pw)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("%w: is citybrain serve running at %s? (--server URL)", err, server)
			}
			defer resp.Body.Close()
			var body struct {
				Token string `json:"token"`
				Error string `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				return fmt.Errorf("%s: %s", server, resp.Status)
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s", body.Error)
			}
			fmt.Fprintln(g.out, body.Token)
			return nil
		},
	}
	cmd.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from the first line of standard input")
	cmd.Flags().StringVar(&server, "server", "", "URL of citybrain serve (default http://<http.addr>)")
	return cmd
}
