package runner

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// metadataProblem returns why metadata cannot be sent as a JSON object, naming
// the first bad field's path and type, or "" when it can. Values may be nil,
// bools, Go numbers, json.Number, strings, []byte (sent as base64), []any and
// map[string]any of the same; anything else (a time.Time, a channel, a struct)
// would fail inside structpb with no field named. NaN and infinities are
// numbers to a Struct and are refused by the server, naming where.
func metadataProblem(metadata map[string]any) string {
	return objectProblem(metadata, "")
}

func objectProblem(data map[string]any, path string) string {
	for key, value := range data {
		field := key
		if path != "" {
			field = path + "." + key
		}
		if problem := valueProblem(value, field); problem != "" {
			return problem
		}
	}
	return ""
}

func valueProblem(value any, path string) string {
	switch typed := value.(type) {
	case nil, bool, string, []byte, json.Number,
		int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return ""
	case map[string]any:
		return objectProblem(typed, path)
	case []any:
		for index, item := range typed {
			if problem := valueProblem(item, fmt.Sprintf("%s[%d]", path, index)); problem != "" {
				return problem
			}
		}
		return ""
	default:
		switch reflect.ValueOf(value).Kind() {
		case reflect.Slice, reflect.Array, reflect.Map:
			// structpb takes only these two container types.
			return fmt.Sprintf("run metadata field '%s' is a %T; use []any or map[string]any", path, value)
		}
		return fmt.Sprintf("run metadata field '%s' is a %T, which JSON cannot hold", path, value)
	}
}

// representableFields returns the top-level fields of metadata that JSON can
// hold, for the stop of a job whose metadata cannot be answered.
func representableFields(metadata map[string]any) map[string]any {
	fields := make(map[string]any, len(metadata))
	for key, value := range metadata {
		if valueProblem(value, key) == "" {
			fields[key] = value
		}
	}
	return fields
}
