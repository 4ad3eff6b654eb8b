package component

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/uias/uias/pkg/config"
)

var def = config.SectionDef{Name: Name, New: func() config.Section { return Defaults() }}

func fields(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if fe, ok := e.(*config.FieldError); ok { //nolint:errorlint // walks the join tree node by node
			out = append(out, fe.Field)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

func TestDefaults(t *testing.T) {
	c := config.Default(def)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s := Settings(&c)
	if s.Origin != "uias.audit" || s.Batch != 500 || s.BatchWait != 500*time.Millisecond || s.CheckpointEvery != 1000 ||
		s.CheckpointInterval != 10*time.Second || s.StreamMaxAge != 7*24*time.Hour || s.KeyFileIn(&c) != filepath.Join("data", "keyring.json") {
		t.Fatalf("defaults: %+v", s)
	}
}

func TestEnvironment(t *testing.T) {
	env := map[string]string{"UIAS_AUDIT_ORIGIN": "centre-2.example/audit", "UIAS_AUDIT_BATCH": "50",
		"UIAS_AUDIT_CHECKPOINT_EVERY": "7", "UIAS_AUDIT_CHECKPOINT_INTERVAL": "3s", "UIAS_AUDIT_STREAM_MAX_AGE": "720h",
		"UIAS_KEY_FILE": "/run/secrets/ring", "UIAS_KEY_FILE_ALLOW_OPEN_MODE": "true", "UIAS_KEYRING": "{}", "UIAS_AUDIT_BATCH_WAIT": "1s"}
	c, err := config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil, nil, def)
	if err != nil {
		t.Fatal(err)
	}
	s := Settings(&c)
	if s.Origin != "centre-2.example/audit" || s.Batch != 50 || s.CheckpointEvery != 7 || s.CheckpointInterval != 3*time.Second ||
		s.StreamMaxAge != 720*time.Hour || s.KeyFileIn(&c) != "/run/secrets/ring" || s.KeyRing != "{}" || s.BatchWait != time.Second || !s.KeyFileAllowOpenMode {
		t.Fatalf("from the environment: %+v", s)
	}
}

func TestValidateEachProblem(t *testing.T) {
	for _, tc := range []struct {
		mod   func(c *Config)
		field string
	}{
		{func(c *Config) { c.Origin = "has space" }, "audit.origin"},
		{func(c *Config) { c.Origin = "" }, "audit.origin"},
		{func(c *Config) { c.Batch = 0 }, "audit.batch"},
		{func(c *Config) { c.Batch = 5001 }, "audit.batch"},
		{func(c *Config) { c.BatchWait = 0 }, "audit.batch_wait"},
		{func(c *Config) { c.CheckpointEvery = 0 }, "audit.checkpoint_every"},
		{func(c *Config) { c.CheckpointInterval = time.Millisecond }, "audit.checkpoint_interval"},
		{func(c *Config) { c.StreamMaxAge = 24 * time.Hour }, "audit.stream_max_age"},
	} {
		c := config.Default(def)
		tc.mod(Settings(&c))
		if got := fields(c.Validate()); !slices.Equal(got, []string{tc.field}) {
			t.Errorf("%s: fields %v", tc.field, got)
		}
	}
	c := config.Default(def)
	Settings(&c).StreamMaxAge = 0 // leave the stream as it is
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
