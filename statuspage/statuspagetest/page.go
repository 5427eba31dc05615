// Package statuspagetest reads the status page as tests do: fetched
// through a handler, parsed, and looked up by element id.
package statuspagetest

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// Get fetches / from h, as a request r when given, and parses it; a
// status other than 200 or a page that does not parse fails t.
func Get(t testing.TB, h http.Handler, r *http.Request) (*httptest.ResponseRecorder, *html.Node) {
	t.Helper()
	if r == nil {
		r = httptest.NewRequest(http.MethodGet, "/", nil)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("GET / = %d: %s", w.Code, w.Body)
	}
	doc, err := html.Parse(strings.NewReader(w.Body.String()))
	if err != nil {
		t.Fatalf("page does not parse: %v", err)
	}
	return w, doc
}

// TextByID is the text content of the element with id, its white space
// collapsed; "" if there is none.
func TextByID(n *html.Node, id string) string {
	if n.Type == html.ElementNode {
		for _, a := range n.Attr {
			if a.Key == "id" && a.Val == id {
				var b strings.Builder
				var walk func(*html.Node)
				walk = func(n *html.Node) {
					if n.Type == html.TextNode {
						b.WriteString(n.Data)
					}
					for c := n.FirstChild; c != nil; c = c.NextSibling {
						walk(c)
					}
				}
				walk(n)
				return strings.Join(strings.Fields(b.String()), " ")
			}
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if s := TextByID(c, id); s != "" {
			return s
		}
	}
	return ""
}

// TitleOf is the title attribute of the first element of class class.
func TitleOf(n *html.Node, class string) string {
	if n.Type == html.ElementNode {
		var title string
		var has bool
		for _, a := range n.Attr {
			switch {
			case a.Key == "title":
				title = a.Val
			case a.Key == "class" && slices.Contains(strings.Fields(a.Val), class):
				has = true
			}
		}
		if has {
			return title
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if s := TitleOf(c, class); s != "" {
			return s
		}
	}
	return ""
}
