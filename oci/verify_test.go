package oci

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/opencontainers/go-digest"
)

func TestVerifyingReader(t *testing.T) {
	blob := []byte("the bytes a digest names")
	d := digest.FromBytes(blob)
	cases := []struct {
		name string
		body []byte
		want digest.Digest
		size int64
		err  error // nil, ErrSizeMismatch or ErrDigestMismatch
	}{
		{"exact", blob, d, int64(len(blob)), nil},
		{"exact, size unknown", blob, d, -1, nil},
		{"short", blob[:len(blob)-1], d, int64(len(blob)), ErrSizeMismatch},
		{"short, size unknown", blob[:len(blob)-1], d, -1, ErrDigestMismatch},
		{"long", append(append([]byte{}, blob...), '!'), d, int64(len(blob)), ErrSizeMismatch},
		{"wrong bytes, right size", bytes.ToUpper(blob), d, int64(len(blob)), ErrDigestMismatch},
		{"empty blob", nil, digest.FromBytes(nil), 0, nil},
		{"empty, a blob promised", nil, d, int64(len(blob)), ErrSizeMismatch},
		{"bytes, empty promised", blob, digest.FromBytes(nil), 0, ErrSizeMismatch},
		{"sha512", blob, digest.SHA512.FromBytes(blob), int64(len(blob)), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// One byte at a time: the verdict must not depend on how the
			// source splits its reads.
			vr, err := NewVerifyingReader(iotest.OneByteReader(bytes.NewReader(tc.body)), tc.want, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(vr)
			if tc.err == nil {
				if err != nil || !bytes.Equal(got, tc.body) || vr.Written() != int64(len(tc.body)) {
					t.Fatalf("read %q (%d), %v; want the blob, no error", got, vr.Written(), err)
				}
				return
			}
			var me *MismatchError
			if !errors.Is(err, tc.err) || !errors.As(err, &me) || me.Want != tc.want {
				t.Fatalf("err %v, want a *MismatchError wrapping %v", err, tc.err)
			}
			if tc.size >= 0 && int64(len(tc.body)) > tc.size && int64(len(got)) > tc.size+1 {
				t.Errorf("read %d bytes of a %d-byte blob: too many bytes must stop the read", len(got), tc.size)
			}
		})
	}
}

// TestVerifierAsWriter: the tee beside a temp file refuses a write past
// the size (so the file never holds it) and judges the rest at the end.
func TestVerifierAsWriter(t *testing.T) {
	blob := []byte("0123456789")
	v, err := NewVerifier(digest.FromBytes(blob), 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Write(blob[:6]); err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(); !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("verdict at 6 of 10 bytes: %v, want ErrSizeMismatch", err)
	}
	if n, err := v.Write(blob[6:]); n != 4 || err != nil {
		t.Fatal(n, err)
	}
	if err := v.Verify(); err != nil {
		t.Fatalf("verdict on the whole blob: %v", err)
	}
	if n, err := v.Write([]byte("x")); n != 0 || !errors.Is(err, ErrSizeMismatch) || v.Written() != 10 {
		t.Fatalf("write past the size: %d, %v (written %d); want refused", n, err, v.Written())
	}
	if _, err := NewVerifier("sha256:nope", 1); err == nil {
		t.Fatal("an invalid digest was accepted")
	}
}

func TestWrapMismatch(t *testing.T) {
	errD, errS, other := errors.New("layer digest"), errors.New("layer size"), errors.New("other")
	sizeErr := &MismatchError{Want: digest.FromString("x"), Size: 1, N: 2}
	digestErr := &MismatchError{Want: digest.FromString("x"), Got: digest.FromString("y"), Size: 1, N: 1}
	if err := WrapMismatch(sizeErr, errD, errS); !errors.Is(err, errS) || errors.Is(err, errD) || !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("size mismatch wrapped as %v", err)
	}
	if err := WrapMismatch(digestErr, errD, errS); !errors.Is(err, errD) || errors.Is(err, errS) || !strings.Contains(err.Error(), "hash to") {
		t.Errorf("digest mismatch wrapped as %v", err)
	}
	if err := WrapMismatch(other, errD, errS); err != other {
		t.Errorf("another error changed: %v", err)
	}
	if WrapMismatch(nil, errD, errS) != nil {
		t.Error("nil became an error")
	}
}

// TestVerifySizeOnly: NewSizeReader checks the size alone (the bench
// client's --no-verify); an empty digest is refused, never taken to mean
// "size only".
func TestVerifySizeOnly(t *testing.T) {
	for _, tc := range []struct {
		body string
		size int64
		err  error
	}{
		{"any bytes", 9, nil},
		{"any bytes", -1, nil},
		{"short", 9, ErrSizeMismatch},
		{"much too long", 9, ErrSizeMismatch},
	} {
		vr := NewSizeReader(strings.NewReader(tc.body), tc.size)
		if _, err := io.ReadAll(vr); !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Errorf("%q of %d: %v, want %v", tc.body, tc.size, err, tc.err)
		}
	}
}

func TestEmptyDigestIsRefused(t *testing.T) {
	if _, err := NewVerifier("", 3); err == nil {
		t.Error("NewVerifier accepted an empty digest")
	}
	if _, err := NewVerifyingReader(strings.NewReader("abc"), "", 3); err == nil {
		t.Error("NewVerifyingReader accepted an empty digest")
	}
	if err := VerifyBytes([]byte("abc"), ""); err == nil {
		t.Error("VerifyBytes accepted an empty digest")
	}
}

func TestVerifyBytesAndManifestDigest(t *testing.T) {
	body := []byte(`{"schemaVersion":2}`)
	d := digest.FromBytes(body)
	if err := VerifyBytes(body, d); err != nil {
		t.Errorf("VerifyBytes of the right body: %v", err)
	}
	if err := VerifyBytes(body[1:], d); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("VerifyBytes of other bytes: %v, want ErrDigestMismatch", err)
	}
	if err := VerifyBytes(nil, digest.FromBytes(nil)); err != nil {
		t.Errorf("VerifyBytes of the empty blob: %v", err)
	}
	if got, err := ManifestDigest(body, ""); got != d || err != nil {
		t.Errorf("ManifestDigest without a digest = %s, %v; want the body's sha256", got, err)
	}
	s512 := digest.SHA512.FromBytes(body)
	if got, err := ManifestDigest(body, s512); got != s512 || err != nil {
		t.Errorf("ManifestDigest under sha512 = %s, %v", got, err)
	}
	if got, err := ManifestDigest(body, digest.FromString("other")); got != "" || !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("ManifestDigest of the wrong body = %s, %v; want ErrDigestMismatch", got, err)
	}
}

// TestVerifyingReaderContextStopsWhenCancelled: a copy through it ends with
// the context's error once the context is done, before the content's end.
func TestVerifyingReaderContextStopsWhenCancelled(t *testing.T) {
	body := strings.Repeat("x", 1000)
	ctx, cancel := context.WithCancel(context.Background())
	vr, err := NewVerifyingReaderContext(ctx, strings.NewReader(body), digest.FromString(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if _, err := vr.Read(buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(vr); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: %v, want context.Canceled", err)
	}
	if vr.Written() != 100 {
		t.Errorf("read %d bytes, want the 100 read before the cancel", vr.Written())
	}
}
