package polytrial_test

import (
	"context"
	"fmt"
	"log"

	polytrial "github.com/polytrial/polytrial/client/go"
)

// The README's "Go client in ten lines": the body of this example, run
// against the test server, with address in place of "localhost:50051".
func Example() {
	ctx := context.Background()
	client, err := polytrial.Dial(ctx, address)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	definition, _ := polytrial.NewExperiment("quadratic").Float("x", -5, 5).Minimize("loss").Build()
	if _, err := client.CreateExperiment(ctx, definition); err != nil {
		log.Fatal(err)
	}
	summary, err := polytrial.Optimize(ctx, client, "quadratic", func(_ context.Context, p polytrial.Parameters) (polytrial.Result, error) {
		x, _ := p.Float("x")
		return polytrial.Number(x * x), nil
	}, 5)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(summary.NumCompleted(), "trials completed; best x is a", summary.Best.Parameters["x"].Kind())
	// Output: 5 trials completed; best x is a float
}
