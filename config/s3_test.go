package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// s3Secret is distinctive so that a leak is found however it is quoted.
const s3Secret = "s3-wJalrXUtnFEMI-K7MDENG"

// withS3 is a loaded default config with change applied to its S3
// section (its endpoint and bucket set, so that it is valid).
func withS3(change func(*S3)) Config {
	return loaded(func(c *Config) {
		c.Storage.S3.Endpoint, c.Storage.S3.Bucket = "https://s3.example.com", "b"
		if change != nil {
			change(&c.Storage.S3)
		}
	})
}

// TestS3EverySettingEveryLayer sets each field of storage.s3 through the
// YAML file, its WHARF_* variable and its flag, and checks the field.
func TestS3EverySettingEveryLayer(t *testing.T) {
	t.Parallel()
	keyFile := writeFile(t, "s3-key", s3Secret+"\n")
	yes := true
	base := "storage:\n  s3:\n    endpoint: https://s3.example.com\n    bucket: b\n"
	tests := []struct {
		key, flag, env, value string
		want                  func(*S3)
	}{
		{"endpoint", "storage-s3-endpoint", "WHARF_STORAGE_S3_ENDPOINT", "http://127.0.0.1:9000",
			func(s *S3) { s.Endpoint = "http://127.0.0.1:9000" }},
		{"bucket", "storage-s3-bucket", "WHARF_STORAGE_S3_BUCKET", "content",
			func(s *S3) { s.Bucket = "content" }},
		{"region", "storage-s3-region", "WHARF_STORAGE_S3_REGION", "eu-west-1",
			func(s *S3) { s.Region = "eu-west-1" }},
		{"prefix", "storage-s3-prefix", "WHARF_STORAGE_S3_PREFIX", "mirror/a",
			func(s *S3) { s.Prefix = "mirror/a" }},
		{"pathStyle", "storage-s3-path-style", "WHARF_STORAGE_S3_PATH_STYLE", "true",
			func(s *S3) { s.PathStyle = &yes }},
		{"caFile", "storage-s3-ca-file", "WHARF_STORAGE_S3_CA_FILE", "/etc/ca.pem",
			func(s *S3) { s.CAFile = "/etc/ca.pem" }},
		{"secretKeyFile", "storage-s3-secret-key-file", "WHARF_STORAGE_S3_SECRET_KEY_FILE", keyFile,
			func(s *S3) { s.AccessKey, s.SecretKey = "AKID", s3Secret }}, // read, and the file cleared
		{"secretKey", "storage-s3-secret-key", "WHARF_STORAGE_S3_SECRET_KEY", s3Secret,
			func(s *S3) { s.AccessKey, s.SecretKey = "AKID", s3Secret }},
		{"sessionToken", "storage-s3-session-token", "WHARF_STORAGE_S3_SESSION_TOKEN", "token-0123",
			func(s *S3) { s.AccessKey, s.SecretKey, s.SessionToken = "AKID", s3Secret, "token-0123" }},
		{"iamRole", "storage-s3-iam-role", "WHARF_STORAGE_S3_IAM_ROLE", "true",
			func(s *S3) { s.IAMRole = &yes }},
		{"partSize", "storage-s3-part-size", "WHARF_STORAGE_S3_PART_SIZE", "64MiB",
			func(s *S3) { s.PartSize = 64 << 20 }},
		{"timeout", "storage-s3-timeout", "WHARF_STORAGE_S3_TIMEOUT", "5s",
			func(s *S3) { s.Timeout = Duration(5 * time.Second) }},
		{"maxSize", "storage-s3-max-size", "WHARF_STORAGE_S3_MAX_SIZE", "50GiB",
			func(s *S3) { s.MaxSize = 50 << 30 }},
		{"abandonedUploadAge", "storage-s3-abandoned-upload-age", "WHARF_STORAGE_S3_ABANDONED_UPLOAD_AGE", "2h",
			func(s *S3) { s.AbandonedUploadAge = Duration(2 * time.Hour) }},
	}
	for _, tt := range tests {
		want := withS3(tt.want)
		// A secret needs its access key, given the same way.
		yamlExtra, envExtra, flagExtra := "", map[string]string{}, []string(nil)
		if strings.HasPrefix(tt.key, "secretKey") {
			yamlExtra, envExtra["WHARF_STORAGE_S3_ACCESS_KEY"], flagExtra = "    accessKey: AKID\n", "AKID", []string{"--storage-s3-access-key", "AKID"}
		}
		if tt.key == "sessionToken" { // and a token its keys
			yamlExtra = "    accessKey: AKID\n    secretKey: " + s3Secret + "\n"
			envExtra["WHARF_STORAGE_S3_ACCESS_KEY"], envExtra["WHARF_STORAGE_S3_SECRET_KEY"] = "AKID", s3Secret
			flagExtra = []string{"--storage-s3-access-key", "AKID", "--storage-s3-secret-key", s3Secret}
		}
		fileBase := base
		if tt.key == "endpoint" || tt.key == "bucket" { // not twice
			fileBase = strings.Replace(base, "    "+tt.key+":", "    # "+tt.key+":", 1)
		}
		file := writeFile(t, "wharf.yaml", fileBase+yamlExtra+"    "+tt.key+": "+tt.value+"\n")
		envOnly := map[string]string{"WHARF_STORAGE_S3_ENDPOINT": "https://s3.example.com", "WHARF_STORAGE_S3_BUCKET": "b", tt.env: tt.value}
		for k, v := range envExtra {
			envOnly[k] = v
		}
		layers := map[string]struct {
			args []string
			env  map[string]string
		}{
			"yaml": {[]string{"--config", file}, nil},
			"env":  {nil, envOnly},
			"flag": {append([]string{"--config", writeFile(t, "base.yaml", base), "--" + tt.flag + "=" + tt.value}, flagExtra...), nil},
		}
		for layer, in := range layers {
			got, err := Load(in.args, env(in.env))
			if err != nil {
				t.Errorf("%s by %s: %v", tt.key, layer, err)
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s by %s:\n got %+v\nwant %+v", tt.key, layer, got.Storage.S3, want.Storage.S3)
			}
		}
	}
}

// TestS3AbsentIsTheDiskStore: without the section, nothing of it is on,
// whatever AWS's variables say.
func TestS3AbsentIsTheDiskStore(t *testing.T) {
	t.Parallel()
	got, err := Load(nil, env(map[string]string{"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": s3Secret}))
	if err != nil {
		t.Fatal(err)
	}
	if got.Storage.S3.On() || !reflect.DeepEqual(got, loaded(nil)) {
		t.Errorf("no storage.s3 given, got %+v", got.Storage.S3)
	}
	empty := writeFile(t, "wharf.yaml", "storage:\n  s3:\n")
	if got, err := Load([]string{"--config", empty}, nil); err != nil || got.Storage.S3.On() {
		t.Errorf("an empty s3: section: on %v, %v", got.Storage.S3.On(), err)
	}
	// A switch set to its default, false, turns nothing on.
	off := env(map[string]string{"WHARF_STORAGE_S3_IAM_ROLE": "false", "WHARF_STORAGE_S3_PATH_STYLE": "false"})
	if got, err := Load(nil, off); err != nil || got.Storage.S3.On() {
		t.Errorf("iamRole and pathStyle false: on %v, %v", got.Storage.S3.On(), err)
	}
}

// TestS3CredentialsFromAWSVariables: AWS's variables stand in for keys
// the section does not name, and never override those it does.
func TestS3CredentialsFromAWSVariables(t *testing.T) {
	t.Parallel()
	keyFile := writeFile(t, "s3-key", "from-file\n")
	aws := map[string]string{"WHARF_STORAGE_S3_ENDPOINT": "https://s3.example.com", "WHARF_STORAGE_S3_BUCKET": "b",
		"AWS_ACCESS_KEY_ID": "AWSID", "AWS_SECRET_ACCESS_KEY": s3Secret}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range aws {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name      string
		env       map[string]string
		wantID    string
		wantKey   string
		wantToken string
		wantErrs  []string
	}{
		{"none named: AWS's", aws, "AWSID", s3Secret, "", nil},
		{"none named: AWS's, with its session token", with("AWS_SESSION_TOKEN", "aws-token"), "AWSID", s3Secret, "aws-token", nil},
		{"keys named", with("WHARF_STORAGE_S3_ACCESS_KEY", "MINE", "WHARF_STORAGE_S3_SECRET_KEY", "mine", "AWS_SESSION_TOKEN", "aws-token"), "MINE", "mine", "", nil},
		{"key file named", with("WHARF_STORAGE_S3_ACCESS_KEY", "MINE", "WHARF_STORAGE_S3_SECRET_KEY_FILE", keyFile), "MINE", "from-file", "", nil},
		{"IAM role named: no keys from AWS's variables", with("WHARF_STORAGE_S3_IAM_ROLE", "true", "AWS_SESSION_TOKEN", "aws-token"), "", "", "", nil},
		{"neither: anonymous", with("AWS_ACCESS_KEY_ID", "", "AWS_SECRET_ACCESS_KEY", ""), "", "", "", nil},
		{"AWS id alone", with("AWS_SECRET_ACCESS_KEY", ""), "", "", "", []string{"storage.s3: AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY"}},
		{"AWS key alone", with("AWS_ACCESS_KEY_ID", ""), "", "", "", []string{"storage.s3: AWS_SECRET_ACCESS_KEY is set without AWS_ACCESS_KEY_ID"}},
	}
	for _, tt := range tests {
		got, err := Load(nil, env(tt.env))
		if len(tt.wantErrs) > 0 {
			checkErrorLines(t, tt.name, err, tt.wantErrs)
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if s := got.Storage.S3; s.AccessKey != tt.wantID || s.SecretKey.Value() != tt.wantKey || s.SecretKeyFile != "" || s.SessionToken.Value() != tt.wantToken {
			t.Errorf("%s: access key %q, secret key right %v, file %q, session token right %v", tt.name, s.AccessKey, s.SecretKey.Value() == tt.wantKey, s.SecretKeyFile, s.SessionToken.Value() == tt.wantToken)
		}
	}
}

// TestS3ValidationNamesField: each problem of the section, by its field.
func TestS3ValidationNamesField(t *testing.T) {
	t.Parallel()
	yes := true
	tests := []struct {
		name   string
		change func(*S3)
		want   string
	}{
		{"any setting turns it on", func(s *S3) { s.Endpoint, s.Bucket, s.Region = "", "", "eu-west-1" },
			"storage.s3.endpoint: is required with storage.s3 (e.g. https://s3.eu-west-1.amazonaws.com)\nstorage.s3.bucket: is required with storage.s3"},
		{"endpoint not a URL", func(s *S3) { s.Endpoint = "https://exa mple.com" }, "storage.s3.endpoint: is not a URL"},
		{"endpoint scheme", func(s *S3) { s.Endpoint = "s3.example.com" }, `storage.s3.endpoint: "s3.example.com" must start with https:// or http://`},
		{"endpoint ftp", func(s *S3) { s.Endpoint = "ftp://s3.example.com" }, `storage.s3.endpoint: "ftp://s3.example.com" must start with https:// or http://`},
		{"endpoint no host", func(s *S3) { s.Endpoint = "https://" }, `storage.s3.endpoint: "https://" has no host`},
		{"endpoint path", func(s *S3) { s.Endpoint = "https://s3.example.com/bucket" },
			`storage.s3.endpoint: "https://s3.example.com/bucket" must be scheme and host only, without a path or query (the bucket is storage.s3.bucket, a key prefix storage.s3.prefix)`},
		{"endpoint query", func(s *S3) { s.Endpoint = "https://s3.example.com?x=1" }, `storage.s3.endpoint: "https://s3.example.com?x=1" must be scheme and host only`},
		{"endpoint credentials", func(s *S3) { s.Endpoint = "https://AKID:" + s3Secret + "@s3.example.com" },
			"storage.s3.endpoint: URL must not carry credentials; use storage.s3.accessKey and storage.s3.secretKey"},
		{"bucket", func(s *S3) { s.Bucket = "" }, "storage.s3.bucket: is required with storage.s3"},
		{"secret key twice", func(s *S3) { s.AccessKey, s.SecretKey, s.SecretKeyFile = "AKID", s3Secret, "/run/k" },
			"storage.s3.secretKey: set together with storage.s3.secretKeyFile; use one"},
		{"secret without access key", func(s *S3) { s.SecretKey = s3Secret }, "storage.s3.accessKey: required when a secret key is set"},
		{"secret file without access key", func(s *S3) { s.SecretKeyFile = "/run/k" }, "storage.s3.accessKey: required when a secret key is set"},
		{"access key without secret", func(s *S3) { s.AccessKey = "AKID" },
			"storage.s3.secretKey: required when an access key is set (or set storage.s3.secretKeyFile)"},
		{"IAM role and keys", func(s *S3) { s.IAMRole, s.AccessKey, s.SecretKey = &yes, "AKID", s3Secret },
			"storage.s3.iamRole: set together with keys; use the role or the keys"},
		{"IAM role and a key file", func(s *S3) { s.IAMRole, s.AccessKey, s.SecretKeyFile = &yes, "AKID", "/run/k" },
			"storage.s3.iamRole: set together with keys; use the role or the keys"},
		{"session token without keys", func(s *S3) { s.SessionToken = s3Secret },
			"storage.s3.sessionToken: goes with the temporary keys it was issued with"},
		{"session token with the IAM role", func(s *S3) { s.IAMRole, s.SessionToken = &yes, s3Secret },
			"storage.s3.sessionToken: not with storage.s3.iamRole"},
		{"part size small", func(s *S3) { s.PartSize = 5<<20 - 1 }, "storage.s3.partSize: 5242879 is outside S3's part sizes, 5MiB..5GiB"},
		{"part size large", func(s *S3) { s.PartSize = 5<<30 + 1 }, "storage.s3.partSize: 5368709121 is outside S3's part sizes, 5MiB..5GiB"},
		{"timeout", func(s *S3) { s.Timeout = 0 }, "storage.s3.timeout: 0s must be more than 0"},
		{"max size negative", func(s *S3) { s.MaxSize = -1 }, "storage.s3.maxSize: -1 is negative; use 0 for no cap"},
		{"abandoned upload age", func(s *S3) { s.AbandonedUploadAge = Duration(-time.Hour) }, "storage.s3.abandonedUploadAge: -1h must be more than 0"},
	}
	for _, tt := range tests {
		err := withS3(tt.change).Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: got %v\nwant %s", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), s3Secret) {
			t.Errorf("%s: the error shows the secret: %v", tt.name, err)
		}
	}
	for _, ok := range []func(*S3){
		nil,
		func(s *S3) { s.PartSize, s.Endpoint = 5<<20, "http://127.0.0.1:9000/" },
		func(s *S3) { s.PartSize, s.AccessKey, s.SecretKey = 5<<30, "AKID", s3Secret },
	} {
		if err := withS3(ok).Validate(); err != nil {
			t.Errorf("%+v: %v", withS3(ok).Storage.S3, err)
		}
	}
}

// TestS3MaxSizeNegativeRefused: a negative cap on the bucket is refused
// by every layer, each error naming where it came from.
func TestS3MaxSizeNegativeRefused(t *testing.T) {
	t.Parallel()
	base := []string{"--storage-s3-endpoint", "https://s3.example.com", "--storage-s3-bucket", "b"}
	file := writeFile(t, "wharf.yaml", "storage:\n  s3:\n    maxSize: -1GiB\n")
	for layer, in := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"yaml": {append([]string{"--config", file}, base...), nil, "storage.s3.maxSize"},
		"env":  {base, map[string]string{"WHARF_STORAGE_S3_MAX_SIZE": "-1"}, "WHARF_STORAGE_S3_MAX_SIZE"},
		"flag": {append(base, "--storage-s3-max-size=-1"), nil, "--storage-s3-max-size"},
	} {
		_, err := Load(in.args, env(in.env))
		if err == nil || !strings.Contains(err.Error(), in.want) || !strings.Contains(err.Error(), "negative") {
			t.Errorf("%s: %v; want an error naming %s, negative", layer, err, in.want)
		}
	}
}

// TestS3SecretKeyFileProblems: a file that cannot be read or is empty is
// an error naming the setting and where it was set.
func TestS3SecretKeyFileProblems(t *testing.T) {
	t.Parallel()
	empty := writeFile(t, "empty", "\n")
	base := []string{"--storage-s3-endpoint", "https://s3.example.com", "--storage-s3-bucket", "b", "--storage-s3-access-key", "AKID"}
	_, err := Load(append(base, "--storage-s3-secret-key-file", "/nonexistent/key"), nil)
	if err == nil || !strings.HasPrefix(err.Error(), "storage.s3.secretKeyFile: open /nonexistent/key: no such file") ||
		!strings.HasSuffix(err.Error(), "(from --storage-s3-secret-key-file)") {
		t.Errorf("missing file: %v", err)
	}
	_, err = Load(base, env(map[string]string{"WHARF_STORAGE_S3_SECRET_KEY_FILE": empty}))
	if want := "storage.s3.secretKeyFile: " + empty + " is empty (from WHARF_STORAGE_S3_SECRET_KEY_FILE)"; err == nil || err.Error() != want {
		t.Errorf("empty file: %v, want %s", err, want)
	}
}

// TestS3SecretNeverPrinted: the secret key, however it came, is in no
// printed form of the Config nor in its log lines.
func TestS3SecretNeverPrinted(t *testing.T) {
	t.Parallel()
	keyFile := writeFile(t, "s3-key", s3Secret+"\n")
	for name, in := range map[string]map[string]string{
		"setting": {"WHARF_STORAGE_S3_ACCESS_KEY": "AKID", "WHARF_STORAGE_S3_SECRET_KEY": s3Secret},
		"file":    {"WHARF_STORAGE_S3_ACCESS_KEY": "AKID", "WHARF_STORAGE_S3_SECRET_KEY_FILE": keyFile},
		"AWS":     {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": s3Secret},
	} {
		in["WHARF_STORAGE_S3_ENDPOINT"], in["WHARF_STORAGE_S3_BUCKET"] = "https://s3.example.com", "b"
		cfg, err := Load(nil, env(in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cfg.Storage.S3.SecretKey.Value() != s3Secret {
			t.Fatalf("%s: the secret key was not loaded", name)
		}
		var logged bytes.Buffer
		l := logrus.New()
		l.SetOutput(&logged)
		l.SetFormatter(&logrus.JSONFormatter{})
		l.WithField("config", cfg).WithField("s3", cfg.Storage.S3).Info("loaded")
		j, _ := json.Marshal(cfg)
		for form, out := range map[string]string{
			"%v": fmt.Sprintf("%v", cfg), "%+v": fmt.Sprintf("%+v", cfg), "%#v": fmt.Sprintf("%#v", cfg.Storage.S3),
			"json": string(j), "log": logged.String(), "location": cfg.Storage.S3.Location(),
		} {
			if strings.Contains(out, s3Secret) {
				t.Errorf("%s: %s shows the secret: %s", name, form, out)
			}
		}
	}
}

func TestS3Location(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ prefix, want string }{
		{"", "s3://b at https://s3.example.com"},
		{"/mirror/a/", "s3://b/mirror/a at https://s3.example.com"},
	} {
		if got := withS3(func(s *S3) { s.Prefix = tt.prefix }).Storage.S3.Location(); got != tt.want {
			t.Errorf("prefix %q: %q, want %q", tt.prefix, got, tt.want)
		}
	}
}

// checkErrorLines fails unless err's lines are want, in order.
func checkErrorLines(t *testing.T, name string, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %q", name, want)
		return
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", name, got, want)
	}
}
