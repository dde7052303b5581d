package sink

// stringMap is a JSON object of string values (substitutions, custom_args) kept as key/value
// pairs pointing into the request body. A request carries thousands of these; Go maps would
// cost most of the time and garbage of accepting it.
type stringMap struct {
	pairs []string // key0, value0, key1, value1, …; keys are unique
}

// dedupe keeps the last value of a repeated key, as decoding into a map would.
func dedupe(pairs []string) []string {
	n := len(pairs) / 2
	if n < 2 {
		return pairs
	}
	dup := false
	if n <= 16 {
	outer:
		for i := 0; i < len(pairs); i += 2 {
			for j := i + 2; j < len(pairs); j += 2 {
				if pairs[i] == pairs[j] {
					dup = true
					break outer
				}
			}
		}
	} else {
		seen := make(map[string]struct{}, n)
		for i := 0; i < len(pairs); i += 2 {
			if _, ok := seen[pairs[i]]; ok {
				dup = true
				break
			}
			seen[pairs[i]] = struct{}{}
		}
	}
	if !dup {
		return pairs
	}
	last := make(map[string]int, n)
	for i := 0; i < len(pairs); i += 2 {
		last[pairs[i]] = i
	}
	out := make([]string, 0, 2*len(last))
	for i := 0; i < len(pairs); i += 2 {
		if last[pairs[i]] == i {
			out = append(out, pairs[i], pairs[i+1])
		}
	}
	return out
}

// len is the number of keys.
func (m stringMap) len() int { return len(m.pairs) / 2 }

// size is the bytes of keys and values, the measure SendGrid's limits use.
func (m stringMap) size() int {
	n := 0
	for _, s := range m.pairs {
		n += len(s)
	}
	return n
}

// get returns the value of key.
func (m stringMap) get(key string) (string, bool) {
	for i := 0; i+1 < len(m.pairs); i += 2 {
		if m.pairs[i] == key {
			return m.pairs[i+1], true
		}
	}
	return "", false
}

// toMap copies the pairs into a map; nil when empty.
func (m stringMap) toMap() map[string]string {
	if len(m.pairs) == 0 {
		return nil
	}
	out := make(map[string]string, m.len())
	for i := 0; i+1 < len(m.pairs); i += 2 {
		out[m.pairs[i]] = m.pairs[i+1]
	}
	return out
}
