module github.com/polytrial/polytrial/client/go

go 1.26.0

require (
	github.com/polytrial/polytrial/protos/gen/go v0.0.0
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261104224025-d1e00e9f33ab
	google.golang.org/grpc v1.85.0
)

require (
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/api v0.0.0-20261110000943-09e21b237f2c // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

// The generated code lives in one module that every Go package of this
// repository shares, so the protobuf registry never sees the same file twice.
replace github.com/polytrial/polytrial/protos/gen/go => ../../protos/gen/go
