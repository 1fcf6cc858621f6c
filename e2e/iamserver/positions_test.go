package iamserver

import (
	"reflect"
	"testing"
)

func TestStatementSpans(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []span
	}{
		{"compact", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow"},{"Effect":"Deny"}]}`,
			[]span{{pos{1, 38}, pos{1, 55}}, {pos{1, 57}, pos{1, 73}}}},
		{"pretty", "{\n  \"Statement\": [\n    {\n      \"Effect\": \"Allow\"\n    },\n    {\"Effect\": \"Deny\"}\n  ],\n  \"Version\": \"2012-10-17\"\n}",
			[]span{{pos{3, 5}, pos{5, 5}}, {pos{6, 5}, pos{6, 22}}}},
		{"single statement object", `{"Version": "2012-10-17", "Statement": {"Effect": "Allow"}}`,
			[]span{{pos{1, 40}, pos{1, 58}}}},
		{"nested values skipped", `{"Id": {"a": [1, {"Statement": 2}]}, "Statement": [{"Sid": "x"}]}`,
			[]span{{pos{1, 52}, pos{1, 63}}}},
		{"no statement", `{"Version": "2012-10-17"}`, nil},
		{"not JSON", `%7B`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := statementSpans(tc.doc); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("statementSpans = %v, want %v", got, tc.want)
			}
		})
	}
}
