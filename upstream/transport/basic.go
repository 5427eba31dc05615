package transport

import "net/http"

// Credentials are a username and password for an upstream, used for Basic
// challenges and to authenticate token requests. The zero value means
// anonymous. String never reveals the password.
type Credentials struct {
	Username string
	Password string
}

// Empty reports whether there are no credentials.
func (c Credentials) Empty() bool { return c.Username == "" && c.Password == "" }

// String names the user and hides the password, so credentials that end
// up in a log line or an error do not leak.
func (c Credentials) String() string {
	if c.Empty() {
		return "anonymous"
	}
	return c.Username + ":<redacted>"
}

// setBasic puts c on r as Basic credentials.
func (c Credentials) setBasic(r *http.Request) {
	r.SetBasicAuth(c.Username, c.Password)
}
