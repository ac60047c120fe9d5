package text_test

import (
	"strings"
	"testing"

	"github.com/knk-id/knk/internal/text"
)

// Every refused class, each at a known position, in a single-line field.
func TestCleanRefusesEachClass(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		in    string
		class text.Class
		pos   int
		want  string
	}{
		{"NUL", "Siti\x00Rahayu", text.Control, 5, "control character: U+0000 at character 5"},
		{"ESC", "Siti \x1b[31mRahayu", text.Control, 6, "U+001B at character 6"},
		{"TAB", "Siti\tRahayu", text.Control, 5, "U+0009"},
		{"DEL", "Siti\x7f", text.Control, 5, "U+007F"},
		{"C1 control", "Siti\u009bRahayu", text.Control, 5, "U+009B"},
		{"LF in a single-line field", "Pelatihan\nKNK", text.LineBreak, 10, "line break: U+000A at character 10"},
		{"CR in a single-line field", "Pelatihan\rKNK", text.LineBreak, 10, "U+000D"},
		{"line separator", "Pelatihan\u2028KNK", text.LineBreak, 10, "U+2028"},
		{"next line", "Pelatihan\u0085KNK", text.LineBreak, 10, "U+0085"},
		{"right-to-left override", "Siti \u202eayahaR", text.Bidi, 6, "bidirectional formatting character: U+202E at character 6"},
		{"left-to-right embedding", "\u202aSiti", text.Bidi, 1, "U+202A"},
		{"pop directional formatting", "Siti\u202c", text.Bidi, 5, "U+202C"},
		{"first strong isolate", "Siti\u2068x", text.Bidi, 5, "U+2068"},
		{"pop directional isolate", "Siti\u2069", text.Bidi, 5, "U+2069"},
		{"left-to-right mark", "Siti\u200e", text.Bidi, 5, "U+200E"},
		{"right-to-left mark", "S\u200fiti", text.Bidi, 2, "U+200F"},
		{"Arabic letter mark", "Siti\u061c", text.Bidi, 5, "U+061C"},
		{"zero-width space", "Si\u200bti", text.ZeroWidth, 3, "zero-width character: U+200B at character 3"},
		{"zero-width non-joiner", "Si\u200cti", text.ZeroWidth, 3, "U+200C"},
		{"zero-width joiner", "Si\u200dti", text.ZeroWidth, 3, "U+200D"},
		{"word joiner", "Si\u2060ti", text.ZeroWidth, 3, "U+2060"},
		{"byte order mark", "Siti\ufeff", text.ZeroWidth, 5, "U+FEFF"},
		{"invalid UTF-8", "Sit\xffi", text.InvalidUTF8, 4, "not valid UTF-8 text (at character 4)"},
		{"position counts leading spaces as sent", "  Ab\u202e", text.Bidi, 5, "at character 5"},
		{"position counts characters, not bytes", "Ña\u00f1\u200b", text.ZeroWidth, 4, "at character 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := text.Clean(tc.in, text.Name.Must())
			te, ok := err.(*text.Error)
			if !ok {
				t.Fatalf("Clean(%q) = %v, want a *text.Error", tc.in, err)
			}
			if te.Class != tc.class || te.Pos != tc.pos || !strings.Contains(te.Error(), tc.want) {
				t.Errorf("Clean(%q): class %q at %d, %q; want %q at %d, containing %q",
					tc.in, te.Class, te.Pos, te.Error(), tc.class, tc.pos, tc.want)
			}
		})
	}
}

func TestCleanAccepts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		rule text.Rule
		want string
	}{
		{"trimmed", "  Siti Rahayu \n", text.Name, "Siti Rahayu"},
		{"NFC: e + combining acute becomes é", "Andre\u0301", text.Name, "Andr\u00e9"},
		{"Arabic and Latin script letters", "Muhammad محمد", text.Name, "Muhammad محمد"},
		{"line feeds in a multi-line reason", "pindah kerja\nke Batam", text.Reason, "pindah kerja\nke Batam"},
		{"optional and empty", "", text.Place, ""},
		{"exactly the maximum", strings.Repeat("é", 100), text.Place, strings.Repeat("é", 100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := text.Clean(tc.in, tc.rule)
			if err != nil || got != tc.want {
				t.Errorf("Clean(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestCleanLengthAndRequired(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		rule text.Rule
		want string
	}{
		{strings.Repeat("a", 101), text.Place, "must be at most 100 characters (it has 101)"},
		// Counted after NFC: 100 × (e + U+0301) is 100 characters, not 200.
		{strings.Repeat("e\u0301", 101), text.Place, "must be at most 100 characters (it has 101)"},
		{"   ", text.Name.Must(), "is required"},
		{"", text.Reason, "is required"},
		{"a\r\nb", text.Reason, "line break: U+000D at character 2"},
		{"a\tb", text.Reason, "control character: U+0009"},
	} {
		if _, err := text.Clean(tc.in, tc.rule); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Clean(%q) = %v; want an error containing %q", tc.in, err, tc.want)
		}
	}
	if got, err := text.Clean(strings.Repeat("e\u0301", 100), text.Place); err != nil || len([]rune(got)) != 100 {
		t.Errorf("100 decomposed é: %d characters, %v; want 100 composed", len([]rune(got)), err)
	}
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"Siti", "a\u202eb", "\x00", "e\u0301", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := text.Clean(s, text.Reason)
		if err != nil {
			return
		}
		for _, r := range out {
			if c := text.Classify(r); c != "" && r != '\n' {
				t.Fatalf("Clean(%q) kept %q (%s)", s, r, c)
			}
		}
	})
}
