package api

import "github.com/knk-id/knk/internal/text"

// Text checks the free-text field with the shared rules of internal/text, adds a
// violation naming the field, the class of character and its position when it
// fails, and returns the value as stored (trimmed, NFC).
func (v *Violations) Text(field, value string, r text.Rule) string {
	out, err := text.Clean(value, r)
	if err != nil {
		v.Add(field, err.Error())
		return ""
	}
	return out
}
