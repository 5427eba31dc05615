package upstreamtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/auth/token"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	tokenService    = "wharf-test-registry" // the registry's audience
	tokenIssuerName = "wharf-test-issuer"
	tokenLifetime   = 5 * time.Minute
)

// tokenIssuer is a token server in the shape of Docker Hub's auth.docker.io
// (the distribution token spec), served at /token on the registry's own
// address (clients such as go-containerregistry refuse a realm on another
// loopback address): GET /token?service=…&scope=…, optional
// Basic credentials, JSON with a JWT. The JWT is what distribution's token
// access controller verifies: ES256, signed with the key of the
// certificate in its rootcertbundle and named by that key's JWK
// thumbprint in "kid", claims in distribution's token.ClaimSet.
type tokenIssuer struct {
	certPath   string
	signer     jose.Signer
	user, pass string

	mu sync.Mutex
	n  int
}

func newTokenIssuer(t testing.TB, user, pass string) *tokenIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("upstreamtest: token key: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: tokenIssuerName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("upstreamtest: token certificate: %v", err)
	}
	certPath := filepath.Join(t.TempDir(), "token-root.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatalf("upstreamtest: %v", err)
	}
	// distribution trusts the certificate's key under its JWK thumbprint.
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", token.GetJWKThumbprint(&key.PublicKey)))
	if err != nil {
		t.Fatalf("upstreamtest: token signer: %v", err)
	}
	return &tokenIssuer{certPath: certPath, signer: signer, user: user, pass: pass}
}

func (ti *tokenIssuer) requests() int {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	return ti.n
}

func (ti *tokenIssuer) serveToken(w http.ResponseWriter, r *http.Request) {
	ti.mu.Lock()
	ti.n++
	ti.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path != "/token" {
		http.NotFound(w, r)
		return
	}
	if svc := r.URL.Query().Get("service"); svc != tokenService {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"details": "unknown service " + svc})
		return
	}
	subject := ""
	allowed := []string{"pull"}
	if user, pass, ok := r.BasicAuth(); ok {
		if user != ti.user || pass != ti.pass {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"details": "incorrect username or password"})
			return
		}
		subject, allowed = user, []string{"pull", "push", "delete"}
	}
	now := time.Now()
	claims := token.ClaimSet{
		Issuer:     tokenIssuerName,
		Subject:    subject,
		Audience:   token.AudienceList{tokenService},
		Expiration: now.Add(tokenLifetime).Unix(),
		NotBefore:  now.Add(-time.Second).Unix(),
		IssuedAt:   now.Unix(),
		JWTID:      now.Format(time.RFC3339Nano),
		Access:     grants(r.URL.Query()["scope"], allowed),
	}
	jws, err := jwt.Signed(ti.signer).Claims(claims).Serialize()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token":        jws,
		"access_token": jws,
		"expires_in":   int(tokenLifetime / time.Second),
		"issued_at":    now.UTC().Format(time.RFC3339),
	})
}

// grants answers scopes ("repository:library/alpine:pull,push", several
// per parameter allowed, space-separated) with the allowed actions asked
// for.
func grants(scopes []string, allowed []string) []*token.ResourceActions {
	var out []*token.ResourceActions
	for _, param := range scopes {
		for _, scope := range strings.Fields(param) {
			typ, rest, ok := strings.Cut(scope, ":")
			i := strings.LastIndex(rest, ":")
			if !ok || i < 0 {
				continue
			}
			ra := &token.ResourceActions{Type: typ, Name: rest[:i], Actions: []string{}}
			for _, a := range strings.Split(rest[i+1:], ",") {
				if slices.Contains(allowed, a) {
					ra.Actions = append(ra.Actions, a)
				}
			}
			out = append(out, ra)
		}
	}
	return out
}
