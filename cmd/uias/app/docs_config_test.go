package app_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/config"
)

// configRow is one setting row of the table in docs/operators.md
// "Configuration".
type configRow struct {
	line     int
	keys     []string // YAML key paths
	envs     []string // UIAS_* names
	flag     string   // without "--"; "" = none
	defaults []string // documented defaults, one per key ("" = not checked)
}

var (
	backticked = regexp.MustCompile("`([^`]*)`")
	envName    = regexp.MustCompile(`UIAS_[A-Z0-9_]+`)
)

// operatorsConfigRows parses the settings tables of docs/operators.md: the
// table of "## Configuration" and every component's table whose header
// starts with a key column ("YAML key", "setting", "Setting
// (`audit.reports.`)", "key") followed by an environment column.
func operatorsConfigRows(t *testing.T) []configRow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "operators.md"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []configRow
	var header []string // the current settings table's header cells; nil outside one
	keyPrefix := ""
	headingKey := "" // "ticket.kerberos" of "#### Settings (`ticket.kerberos`)"
	for i, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "#") {
			headingKey = ""
			if m := backticked.FindStringSubmatch(l); m != nil {
				headingKey = m[1]
			}
		}
		if !strings.HasPrefix(l, "|") {
			header = nil
			continue
		}
		if strings.HasPrefix(l, "|---") {
			continue
		}
		cells := strings.Split(strings.Trim(l, "|"), " | ")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		if header == nil {
			h0 := strings.ToLower(cells[0])
			if len(cells) >= 3 && (strings.HasPrefix(h0, "yaml key") || strings.HasPrefix(h0, "setting") || h0 == "key") &&
				strings.HasPrefix(strings.ToLower(cells[1]), "env") {
				header = cells
				keyPrefix = ""
				if m := backticked.FindStringSubmatch(cells[0]); m != nil {
					keyPrefix = m[1] // "Setting (`audit.reports.`)"
				}
			} else {
				header = []string{} // another table: skip its rows
			}
			continue
		}
		if len(header) == 0 {
			continue
		}
		if len(cells) != len(header) {
			t.Fatalf("operators.md:%d: a settings row with %d cells under a header of %d", i+1, len(cells), len(header))
		}
		r := configRow{line: i + 1}
		prefix := ""
		for _, m := range backticked.FindAllStringSubmatch(cells[0], -1) {
			k := m[1]
			if keyPrefix != "" && !strings.HasPrefix(k, keyPrefix) {
				k = keyPrefix + k
			} else if keyPrefix == "" && prefix == "" && !strings.Contains(k, ".") && headingKey != "" {
				k = headingKey + "." + k // a table under "#### Settings (`ticket.kerberos`)"
			}
			if strings.Contains(k, ".") {
				prefix = k[:strings.LastIndex(k, ".")+1]
			} else if prefix != "" {
				k = prefix + k // "`identity.argon2.salt_len`, `key_len`"
			}
			r.keys = append(r.keys, k)
		}
		r.envs = envName.FindAllString(cells[1], -1)
		defCol := -1
		for j, h := range header {
			switch strings.ToLower(h) {
			case "flag":
				if m := backticked.FindStringSubmatch(cells[j]); m != nil {
					r.flag = strings.TrimPrefix(m[1], "--")
				}
			case "default":
				defCol = j
			}
		}
		if def := ""; defCol >= 0 {
			def = cells[defCol]
			if strings.HasPrefix(def, "`") {
				ds := backticked.FindAllStringSubmatch(def, -1)
				for j := range r.keys {
					switch {
					case len(r.keys) == 1:
						r.defaults = append(r.defaults, ds[0][1])
					case j < len(ds) && len(ds) == len(r.keys):
						r.defaults = append(r.defaults, ds[j][1])
					default:
						r.defaults = append(r.defaults, "")
					}
				}
			}
		}
		rows = append(rows, r)
	}
	if len(rows) < 100 {
		t.Fatalf("found %d settings rows in operators.md; the parser lost the tables", len(rows))
	}
	return rows
}

// flatConfig is the configuration as YAML key path → value, as a YAML file
// would write it.
func flatConfig(t *testing.T, c config.Config) map[string]string {
	t.Helper()
	out := map[string]string{}
	add := func(prefix string, v any) {
		b, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		flatten(prefix, m, out)
	}
	add("", c)
	for name, s := range c.Sections {
		add(name+".", s)
	}
	return out
}

func flatten(prefix string, m map[string]any, out map[string]string) {
	for k, v := range m {
		switch x := v.(type) {
		case map[string]any:
			flatten(prefix+k+".", x, out)
			out[prefix+k] = "{map}"
		case []any:
			parts := make([]string, len(x))
			for i, e := range x {
				parts[i] = fmt.Sprint(e)
			}
			out[prefix+k] = strings.Join(parts, ",")
		default:
			out[prefix+k] = fmt.Sprint(x)
		}
	}
}

// envOnly are the documented variables that set no YAML key on purpose
// (secrets, and the key ring itself).
var envOnly = []string{"UIAS_DB_PASSWORD", "UIAS_NATS_PASSWORD", "UIAS_ETCD_PASSWORD", "UIAS_INTERNAL_KEY", "UIAS_KEYRING"}

// zeroMeansDefault are the keys whose empty or zero value in the
// configuration stands for the documented default (the code applying it
// says so).
var zeroMeansDefault = map[string]string{
	"gateway.institution_code":         "", // apiid.DefaultInstitution
	"identity.nonce_kv_replicas":       "0",
	"audit.reports.mail.smtp_security": "", // audit.SMTPSender: "" is starttls
}

// derived are the keys Complete derives whatever their source says.
var derived = []string{"nats.embedded"}

// probeValues are tried in turn to set a setting of unknown type to
// something other than its default.
var probeValues = []string{"7", "7s", "true", "false", "0.005", "x7"}

// changedKeys sets one source (an environment variable or a flag) to the
// first probe value Load accepts that changes the configuration, and
// returns the YAML keys it changed.
func changedKeys(t *testing.T, base map[string]string, env string, flagName string) []string {
	t.Helper()
	for _, v := range probeValues {
		var c config.Config
		var err error
		if env != "" {
			c, err = app.LoadConfig("", func(n string) (string, bool) {
				if n == env {
					return v, true
				}
				return "", false
			}, nil, nil)
		} else {
			c, err = app.LoadConfig("", func(string) (string, bool) { return "", false },
				flag.NewFlagSet("serve", flag.ContinueOnError), []string{"--" + flagName + "=" + v})
		}
		if err != nil {
			continue
		}
		var keys []string
		for k, nv := range flatConfig(t, c) {
			if nv != "{map}" && base[k] != nv {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			return keys
		}
	}
	return nil
}

// sameDefault compares a documented default with the value of the default
// configuration.
func sameDefault(doc, got string) bool {
	if doc == got {
		return true
	}
	if a, err := strconv.ParseFloat(doc, 64); err == nil {
		if b, err := strconv.ParseFloat(got, 64); err == nil {
			return a == b
		}
		if d, err := time.ParseDuration(got); err == nil {
			return a == 0 && d == 0
		}
	}
	if a, err := time.ParseDuration(doc); err == nil {
		if b, err := time.ParseDuration(got); err == nil {
			return a == b
		}
	}
	return false
}

// TestOperatorsConfigTable checks every row of the settings table of
// docs/operators.md "Configuration" against what uias serve reads: each
// YAML key is accepted in a config file, each UIAS_* variable and each flag
// sets that key, and the documented default is the default.
func TestOperatorsConfigTable(t *testing.T) {
	rows := operatorsConfigRows(t)
	def := app.DefaultConfig()
	base := flatConfig(t, def)
	vars := config.EnvVars(app.Registry().Sections()...)
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	if _, err := app.LoadConfig("", func(string) (string, bool) { return "", false }, fs, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, r := range rows {
		for i, k := range r.keys {
			// The key is accepted in a file (unknown keys are errors).
			parts := strings.Split(k, ".")
			var doc strings.Builder
			for j, p := range parts {
				doc.WriteString(strings.Repeat("  ", j) + p + ":")
				if j < len(parts)-1 {
					doc.WriteString("\n")
				}
			}
			doc.WriteString(" null\n")
			path := filepath.Join(dir, "c.yaml")
			if err := os.WriteFile(path, []byte(doc.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := app.LoadConfig(path, func(string) (string, bool) { return "", false }, nil, nil); err != nil {
				t.Errorf("operators.md:%d: YAML key %s is not accepted: %v", r.line, k, err)
				continue
			}
			if i < len(r.defaults) && r.defaults[i] != "" && !strings.Contains(r.defaults[i], "<") {
				got, ok := base[k]
				if !ok {
					got = "" // omitted when empty
				}
				if z, ok := zeroMeansDefault[k]; ok && got == z {
					continue
				}
				if !sameDefault(r.defaults[i], got) {
					t.Errorf("operators.md:%d: %s: documented default %q, the default configuration has %q", r.line, k, r.defaults[i], got)
				}
			}
		}
		for _, e := range r.envs {
			if !slices.Contains(vars, e) {
				t.Errorf("operators.md:%d: %s is not read by uias serve", r.line, e)
				continue
			}
			if slices.Contains(envOnly, e) || len(r.keys) == 0 || slices.Contains(derived, r.keys[0]) {
				continue
			}
			changed := changedKeys(t, base, e, "")
			if !slices.ContainsFunc(changed, func(k string) bool { return slices.Contains(r.keys, k) }) {
				t.Errorf("operators.md:%d: %s sets %v, not %v", r.line, e, changed, r.keys)
			}
		}
		if r.flag != "" {
			if fs.Lookup(r.flag) == nil {
				t.Errorf("operators.md:%d: flag --%s does not exist", r.line, r.flag)
				continue
			}
			changed := changedKeys(t, base, "", r.flag)
			if !slices.ContainsFunc(changed, func(k string) bool { return slices.Contains(r.keys, k) }) {
				t.Errorf("operators.md:%d: --%s sets %v, not %v", r.line, r.flag, changed, r.keys)
			}
		}
	}
}

// TestOperatorsConfigBadValues gives every documented environment variable
// values that cannot be right and checks that the start refuses them with
// a line naming the variable or its YAML key, as "Configuration" promises.
func TestOperatorsConfigBadValues(t *testing.T) {
	rows := operatorsConfigRows(t)
	for _, r := range rows {
		for _, e := range r.envs {
			if slices.Contains(envOnly, e) {
				continue
			}
			for _, v := range []string{"-5", "@@bad@@", "99999999999s"} {
				c, err := app.LoadConfig("", func(n string) (string, bool) {
					if n == e {
						return v, true
					}
					return "", false
				}, nil, nil)
				if err == nil {
					err = c.Validate()
				}
				if err == nil {
					continue // a value this setting may hold (a name, a path)
				}
				msg := err.Error()
				named := strings.Contains(msg, e)
				for _, k := range r.keys {
					// The setting, or (a setting that needs another one: NATS
					// credentials without nats.url, a mail sender without
					// recipients) the one of its section that is missing.
					named = named || strings.Contains(msg, k) ||
						strings.Contains(k, ".") && strings.Contains(msg, "config "+k[:strings.Index(k, ".")+1])
				}
				if !named {
					t.Errorf("operators.md:%d: %s=%q is refused with %q, which names neither %s nor %v", r.line, e, v, msg, e, r.keys)
				}
			}
		}
	}
}

// TestOperatorsNamesEveryVariable: every UIAS_* variable uias serve reads
// is named in docs/operators.md (most in a settings table, a few in the
// text of their section), so an operator can find what each one does
// (UIAS_TICKET_KEY_FILE_ALLOW_OPEN_MODE was read but documented nowhere).
func TestOperatorsNamesEveryVariable(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "operators.md"))
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, e := range envName.FindAllString(string(doc), -1) {
		named[e] = true
	}
	for _, e := range config.EnvVars(app.Registry().Sections()...) {
		if !named[e] {
			t.Errorf("%s is read by uias serve but docs/operators.md does not name it", e)
		}
	}
}
