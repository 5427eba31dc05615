package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestAuthRules(t *testing.T) {
	t.Parallel()
	a := Auth{Rules: "ci:write:docker.io/team/, *:read:*, ops:read:registry.local:5000/infra,dev:read:"}
	got, err := a.ParsedRules()
	if err != nil {
		t.Fatal(err)
	}
	want := []AuthRule{
		{User: "ci", Write: true, Prefix: "docker.io/team"},
		{User: "*", Prefix: ""},
		{User: "ops", Prefix: "registry.local:5000/infra"},
		{User: "dev", Prefix: ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rules %+v, want %+v", got, want)
	}
	for rules, msg := range map[string]string{
		"ci":                `"ci" is not user:access:prefix`,
		"ci:admin:x":        `access "admin" is not read or write`,
		":read:x":           `user "" is not a user name or *`,
		"ci:read:Docker.io": `prefix "Docker.io" is not a lower-case repository prefix`,
		"ci:read:docker.*":  `prefix "docker.*"`,
	} {
		if _, err := (Auth{Rules: rules}).ParsedRules(); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: err %v, want %q", rules, err, msg)
		}
	}
}

func TestValidateAuthAndTLS(t *testing.T) {
	t.Parallel()
	on := true
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"anonymous without users", func(c *Config) { c.Auth.AnonymousPull = &on },
			"auth.anonymousPull: needs auth.htpasswd (without users every client may pull already)"},
		{"rules without users", func(c *Config) { c.Auth.Rules = "anonymous:write:docker.io/ci,ci:read:*" },
			`auth.rules: rule for "ci" needs auth.htpasswd (rules name its users; without it only "anonymous" rules apply)`},
		{"negative failed logins", func(c *Config) { c.Auth.FailedLogins = -1 }, "auth.failedLogins: must be >= 0 (0 is no limit), got -1"},
		{"bad rule", func(c *Config) { c.Auth.Htpasswd, c.Auth.Rules = "/h", "ci:push:*" },
			`auth.rules: "ci:push:*": access "push" is not read or write`},
		{"cert without key", func(c *Config) { c.TLS.CertFile = "/c.pem" }, "tls.keyFile: required with tls.certFile"},
		{"key without cert", func(c *Config) { c.TLS.KeyFile = "/k.pem" }, "tls.certFile: required with tls.keyFile"},
	}
	for _, tt := range tests {
		c := Default()
		tt.change(&c)
		if err := c.Validate(); err == nil || err.Error() != tt.want {
			t.Errorf("%s: Validate() = %v, want %q", tt.name, err, tt.want)
		}
	}
	// Rules for anonymous clients alone need no users: a lab wharf that
	// lets anyone push to one prefix only.
	c := Default()
	c.Auth.AnonymousPush, c.Auth.Rules = &on, "anonymous:write:docker.io/ci,anonymous:read:*"
	if err := c.Validate(); err != nil {
		t.Errorf("anonymous rules without users: %v", err)
	}
	c, err := Load([]string{"--htpasswd", "/etc/wharf/htpasswd", "--anonymous-pull", "--tls-cert", "/c", "--tls-key", "/k"},
		env(map[string]string{"WHARF_AUTH_RULES": "ci:write:*"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.Htpasswd != "/etc/wharf/htpasswd" || !c.Auth.AnonymousPullOn() || c.Auth.Rules != "ci:write:*" || !c.TLS.Enabled() {
		t.Errorf("auth %+v tls %+v", c.Auth, c.TLS)
	}
}
