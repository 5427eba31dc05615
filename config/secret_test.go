package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"go.yaml.in/yaml/v3"
)

// secretValue is distinctive so a leak is found however it is quoted.
const secretValue = "hunter2-s3cr3t"

func TestSecretNeverPrinted(t *testing.T) {
	t.Parallel()
	cfg := Default()
	cfg.Upstream.Username = "me"
	cfg.Upstream.Password = secretValue

	logrusOut := func(f logrus.Formatter, field any) string {
		var buf bytes.Buffer
		l := logrus.New()
		l.SetOutput(&buf)
		l.SetFormatter(f)
		l.WithField("v", field).Info("loaded")
		return buf.String()
	}
	slogOut := func(field any) string {
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("loaded", "v", field)
		slog.New(slog.NewTextHandler(&buf, nil)).Info("loaded", "v", field)
		return buf.String()
	}
	mustString := func(b []byte, err error) string {
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	tests := []struct {
		name string
		out  string
	}{
		{"%v", fmt.Sprintf("%v", cfg)},
		{"%+v", fmt.Sprintf("%+v", cfg)},
		{"%#v", fmt.Sprintf("%#v", cfg)},
		{"%s", fmt.Sprintf("%s", cfg.Upstream.Password)},
		{"%q", fmt.Sprintf("%q", cfg.Upstream.Password)},
		{"%x", fmt.Sprintf("%x", cfg.Upstream.Password)},
		{"%#v secret", fmt.Sprintf("%#v", cfg.Upstream.Password)},
		{"Sprint pointer", fmt.Sprint(&cfg.Upstream)},
		{"json", mustString(json.Marshal(cfg))},
		{"yaml", mustString(yaml.Marshal(cfg))},
		{"text", mustString(cfg.Upstream.Password.MarshalText())},
		{"logrus json", logrusOut(&logrus.JSONFormatter{}, cfg)},
		{"logrus json secret", logrusOut(&logrus.JSONFormatter{}, cfg.Upstream.Password)},
		{"logrus text", logrusOut(&logrus.TextFormatter{DisableColors: true}, cfg)},
		{"logrus text secret", logrusOut(&logrus.TextFormatter{DisableColors: true}, cfg.Upstream.Password)},
		{"slog", slogOut(cfg.Upstream.Password)},
	}
	for _, tt := range tests {
		if strings.Contains(tt.out, secretValue) {
			t.Errorf("%s leaks the secret: %s", tt.name, tt.out)
		}
		if !strings.Contains(tt.out, redacted) {
			t.Errorf("%s does not show %q: %s", tt.name, redacted, tt.out)
		}
	}
	if got := cfg.Upstream.Password.Value(); got != secretValue {
		t.Errorf("Value() = %q, want the secret", got)
	}
}

func TestEmptySecretPrintsEmpty(t *testing.T) {
	t.Parallel()
	var s Secret
	for _, got := range []string{s.String(), fmt.Sprintf("%v", s), fmt.Sprintf("%#v", s)} {
		if got != "" {
			t.Errorf("empty secret printed as %q, want empty", got)
		}
	}
	if b, _ := json.Marshal(s); string(b) != `""` {
		t.Errorf("json.Marshal(empty secret) = %s, want \"\"", b)
	}
}
