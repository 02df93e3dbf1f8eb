package polytrial

import (
	"fmt"
	"strconv"

	pb "github.com/polytrial/polytrial/protos/gen/go/polytrial/v1"
)

// Kind is the type of a parameter value.
type Kind int

const (
	// KindInvalid is the zero Value's kind: no value.
	KindInvalid Kind = iota
	// KindInt is an int64 (an integer range parameter, or an int choice).
	KindInt
	// KindFloat is a float64.
	KindFloat
	// KindString is a string (a choice of strings).
	KindString
	// KindBool is a bool.
	KindBool
)

// String names the kind: "int", "float", "string", "bool" or "invalid".
func (k Kind) String() string {
	switch k {
	case KindInt:
		return "int"
	case KindFloat:
		return "float"
	case KindString:
		return "string"
	case KindBool:
		return "bool"
	}
	return "invalid"
}

// Value is one parameter value, an int64, float64, string or bool, and keeps
// its type both ways: an integer range parameter gives KindInt, a choice of
// strings KindString. Make one with Int, Float, String or Bool.
type Value struct {
	kind Kind
	i    int64
	f    float64
	s    string
	b    bool
}

// Int returns an int64 Value.
func Int(v int64) Value { return Value{kind: KindInt, i: v} }

// Float returns a float64 Value.
func Float(v float64) Value { return Value{kind: KindFloat, f: v} }

// String returns a string Value.
func String(v string) Value { return Value{kind: KindString, s: v} }

// Bool returns a bool Value.
func Bool(v bool) Value { return Value{kind: KindBool, b: v} }

// Kind returns the value's type.
func (v Value) Kind() Kind { return v.kind }

// AsInt returns the value as an int64, and whether it is one.
func (v Value) AsInt() (int64, bool) { return v.i, v.kind == KindInt }

// AsFloat returns the value as a float64, converting an int64, and whether it
// is numeric.
func (v Value) AsFloat() (float64, bool) {
	switch v.kind {
	case KindFloat:
		return v.f, true
	case KindInt:
		return float64(v.i), true
	}
	return 0, false
}

// AsString returns the value as a string, and whether it is one.
func (v Value) AsString() (string, bool) { return v.s, v.kind == KindString }

// AsBool returns the value as a bool, and whether it is one.
func (v Value) AsBool() (bool, bool) { return v.b, v.kind == KindBool }

// Any returns the value as an int64, float64, string or bool (nil when unset).
func (v Value) Any() any {
	switch v.kind {
	case KindInt:
		return v.i
	case KindFloat:
		return v.f
	case KindString:
		return v.s
	case KindBool:
		return v.b
	}
	return nil
}

// String formats the value; strings are quoted, so "3" and 3 differ.
func (v Value) String() string {
	switch v.kind {
	case KindInt:
		return strconv.FormatInt(v.i, 10)
	case KindFloat:
		return strconv.FormatFloat(v.f, 'g', -1, 64)
	case KindString:
		return strconv.Quote(v.s)
	case KindBool:
		return strconv.FormatBool(v.b)
	}
	return "<invalid>"
}

// proto returns the message of the value; field is the request field, for
// the error of a zero Value, and parameter the parameter's name.
func (v Value) proto(field, parameter string) (*pb.ParameterValue, error) {
	switch v.kind {
	case KindInt:
		return &pb.ParameterValue{Kind: &pb.ParameterValue_IntValue{IntValue: v.i}}, nil
	case KindFloat:
		return &pb.ParameterValue{Kind: &pb.ParameterValue_FloatValue{FloatValue: v.f}}, nil
	case KindString:
		return &pb.ParameterValue{Kind: &pb.ParameterValue_StringValue{StringValue: v.s}}, nil
	case KindBool:
		return &pb.ParameterValue{Kind: &pb.ParameterValue_BoolValue{BoolValue: v.b}}, nil
	}
	return nil, invalidArgument(field, "parameter %q: the zero Value has no value; use Int, Float, String or Bool", parameter)
}

func valueFromProto(message *pb.ParameterValue) Value {
	switch kind := message.GetKind().(type) {
	case *pb.ParameterValue_IntValue:
		return Int(kind.IntValue)
	case *pb.ParameterValue_FloatValue:
		return Float(kind.FloatValue)
	case *pb.ParameterValue_StringValue:
		return String(kind.StringValue)
	case *pb.ParameterValue_BoolValue:
		return Bool(kind.BoolValue)
	}
	return Value{}
}

// Parameters is an arm's parameterization: parameter name -> value.
type Parameters map[string]Value

// Float returns parameter name as a float64 (an int64 converted), and whether
// it is there and numeric.
func (p Parameters) Float(name string) (float64, bool) { return p[name].AsFloat() }

// Int returns parameter name as an int64, and whether it is there and one.
func (p Parameters) Int(name string) (int64, bool) { return p[name].AsInt() }

// Text returns parameter name as a string, and whether it is there and one.
func (p Parameters) Text(name string) (string, bool) { return p[name].AsString() }

// Bool returns parameter name as a bool, and whether it is there and one.
func (p Parameters) Bool(name string) (bool, bool) { return p[name].AsBool() }

func (p Parameters) proto(field string) (map[string]*pb.ParameterValue, error) {
	messages := make(map[string]*pb.ParameterValue, len(p))
	for name, value := range p {
		message, err := value.proto(fmt.Sprintf("%s[%q]", field, name), name)
		if err != nil {
			return nil, err
		}
		messages[name] = message
	}
	return messages, nil
}

func parametersFromProto(messages map[string]*pb.ParameterValue) Parameters {
	parameters := make(Parameters, len(messages))
	for name, message := range messages {
		parameters[name] = valueFromProto(message)
	}
	return parameters
}
