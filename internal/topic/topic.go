// Package topic stores sets of KNK training topics as bit sets (bit n is Topic n)
// and reads topic names used as map keys on the wire.
package topic

import knkv1 "github.com/knk-id/knk/gen/knk/v1"

// All is the set of the four topics a certificate needs.
var All = Bits([]knkv1.Topic{knkv1.Topic_TOPIC_K3, knkv1.Topic_TOPIC_PKWT, knkv1.Topic_TOPIC_WAGE_SCALE, knkv1.Topic_TOPIC_SOCIAL_SECURITY})

// Valid reports whether t is one of the four topics.
func Valid(t knkv1.Topic) bool {
	return t >= knkv1.Topic_TOPIC_K3 && t <= knkv1.Topic_TOPIC_SOCIAL_SECURITY
}

// Bits is the bit set of topics.
func Bits(topics []knkv1.Topic) int64 {
	var b int64
	for _, t := range topics {
		b |= 1 << t
	}
	return b
}

// List is the topics of a bit set in enum order.
func List(bits int64) []knkv1.Topic {
	var out []knkv1.Topic
	for t := knkv1.Topic_TOPIC_K3; t <= knkv1.Topic_TOPIC_SOCIAL_SECURITY; t++ {
		if bits&(1<<t) != 0 {
			out = append(out, t)
		}
	}
	return out
}

// Parse reads a topic's enum name ("TOPIC_K3"); ok is false for anything else.
func Parse(name string) (knkv1.Topic, bool) {
	t := knkv1.Topic(knkv1.Topic_value[name])
	return t, Valid(t)
}
