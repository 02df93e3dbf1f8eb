package polytrial

import (
	"errors"
	"fmt"

	pb "github.com/polytrial/polytrial/protos/gen/go/polytrial/v1"
)

// ExperimentBuilder assembles the Experiment message CreateExperiment sends:
//
//	experiment, err := polytrial.NewExperiment("quadratic").
//		Float("x", -5, 5).
//		Choice("optimizer", polytrial.String("adam"), polytrial.String("sgd")).
//		Minimize("loss").
//		Build()
//
// The builder checks only what it must to build a message (a parameter value
// that is unset); the server validates the definition and answers
// InvalidArgument with field violations. Anything the builder lacks can be
// set on the built message, or with Parameter and Constraint.
type ExperimentBuilder struct {
	message *pb.Experiment
	errs    []error
}

// NewExperiment starts an experiment definition. The id has 1-63 lowercase
// letters, digits, '-' or '_', starting with a letter.
func NewExperiment(id string) *ExperimentBuilder {
	return &ExperimentBuilder{message: &pb.Experiment{
		ExperimentId:       id,
		SearchSpace:        &pb.SearchSpace{},
		OptimizationConfig: &pb.OptimizationConfig{},
	}}
}

// Description sets free text about the experiment.
func (b *ExperimentBuilder) Description(text string) *ExperimentBuilder {
	b.message.Description = text
	return b
}

// Parameter adds a parameter message as it is.
func (b *ExperimentBuilder) Parameter(parameter *pb.Parameter) *ExperimentBuilder {
	b.message.SearchSpace.Parameters = append(b.message.SearchSpace.Parameters, parameter)
	return b
}

func (b *ExperimentBuilder) addRange(name string, kind pb.ParameterType, lower, upper float64, log bool) *ExperimentBuilder {
	return b.Parameter(&pb.Parameter{Name: name, Kind: &pb.Parameter_Range{Range: &pb.RangeParameter{
		Type: kind, Lower: lower, Upper: upper, LogScale: log,
	}}})
}

// Float adds a float parameter in [lower, upper].
func (b *ExperimentBuilder) Float(name string, lower, upper float64) *ExperimentBuilder {
	return b.addRange(name, pb.ParameterType_PARAMETER_TYPE_FLOAT, lower, upper, false)
}

// LogFloat adds a float parameter in [lower, upper] searched on a log scale
// (lower must be positive).
func (b *ExperimentBuilder) LogFloat(name string, lower, upper float64) *ExperimentBuilder {
	return b.addRange(name, pb.ParameterType_PARAMETER_TYPE_FLOAT, lower, upper, true)
}

// Int adds an integer parameter in [lower, upper].
func (b *ExperimentBuilder) Int(name string, lower, upper int64) *ExperimentBuilder {
	return b.addRange(name, pb.ParameterType_PARAMETER_TYPE_INT, float64(lower), float64(upper), false)
}

func (b *ExperimentBuilder) addChoice(name string, ordered bool, values []Value) *ExperimentBuilder {
	choice := &pb.ChoiceParameter{IsOrdered: ordered}
	position := len(b.message.SearchSpace.Parameters)
	for i, value := range values {
		message, err := value.proto(fmt.Sprintf("experiment.search_space.parameters[%d].choice.values[%d]", position, i), name)
		if err != nil {
			b.errs = append(b.errs, err)
			continue
		}
		choice.Values = append(choice.Values, message)
	}
	return b.Parameter(&pb.Parameter{Name: name, Kind: &pb.Parameter_Choice{Choice: choice}})
}

// Choice adds an unordered choice among values.
func (b *ExperimentBuilder) Choice(name string, values ...Value) *ExperimentBuilder {
	return b.addChoice(name, false, values)
}

// OrderedChoice adds a choice among values whose order means something.
func (b *ExperimentBuilder) OrderedChoice(name string, values ...Value) *ExperimentBuilder {
	return b.addChoice(name, true, values)
}

// Fixed adds a parameter held at one value.
func (b *ExperimentBuilder) Fixed(name string, value Value) *ExperimentBuilder {
	field := fmt.Sprintf("experiment.search_space.parameters[%d].fixed.value", len(b.message.SearchSpace.Parameters))
	message, err := value.proto(field, name)
	if err != nil {
		b.errs = append(b.errs, err)
	}
	return b.Parameter(&pb.Parameter{Name: name, Kind: &pb.Parameter_Fixed{Fixed: &pb.FixedParameter{Value: message}}})
}

// Constraint adds a parameter constraint (linear or order).
func (b *ExperimentBuilder) Constraint(constraint *pb.ParameterConstraint) *ExperimentBuilder {
	b.message.SearchSpace.ParameterConstraints = append(b.message.SearchSpace.ParameterConstraints, constraint)
	return b
}

// Minimize adds an objective that is minimized.
func (b *ExperimentBuilder) Minimize(metric string) *ExperimentBuilder {
	return b.objective(metric, true)
}

// Maximize adds an objective that is maximized.
func (b *ExperimentBuilder) Maximize(metric string) *ExperimentBuilder {
	return b.objective(metric, false)
}

func (b *ExperimentBuilder) objective(metric string, minimize bool) *ExperimentBuilder {
	config := b.message.OptimizationConfig
	config.Objectives = append(config.Objectives, &pb.Objective{MetricName: metric, Minimize: minimize})
	return b
}

// Runner makes the experiment's trials deploy through a runner service
// (Client.DeployTrial); metrics whose data it returns are named with
// RunnerMetric.
func (b *ExperimentBuilder) Runner(runner RunnerConfig) *ExperimentBuilder {
	b.message.Runner = runner.toProto()
	return b
}

// RunnerMetric says the experiment's runner returns the data of metric, which
// RefreshTrial then fetches.
func (b *ExperimentBuilder) RunnerMetric(metric string) *ExperimentBuilder {
	b.message.MetricSources = append(b.message.MetricSources, &pb.MetricSource{
		MetricName: metric, Kind: pb.MetricSourceKind_METRIC_SOURCE_KIND_RUNNER,
	})
	return b
}

// TrackingMetric adds a metric that is recorded but not optimized.
func (b *ExperimentBuilder) TrackingMetric(metric string) *ExperimentBuilder {
	config := b.message.OptimizationConfig
	config.TrackingMetrics = append(config.TrackingMetrics, metric)
	return b
}

func (b *ExperimentBuilder) strategy() *pb.GenerationStrategy {
	if b.message.GenerationStrategy == nil {
		b.message.GenerationStrategy = &pb.GenerationStrategy{}
	}
	return b.message.GenerationStrategy
}

// Sobol makes every arm come from scrambled Sobol (no Bayesian optimization).
func (b *ExperimentBuilder) Sobol() *ExperimentBuilder {
	b.strategy().Kind = pb.GeneratorKind_GENERATOR_KIND_SOBOL
	return b
}

// Bayesian makes arms come from Bayesian optimization after the initial
// Sobol trials.
func (b *ExperimentBuilder) Bayesian() *ExperimentBuilder {
	b.strategy().Kind = pb.GeneratorKind_GENERATOR_KIND_BAYESIAN
	return b
}

// InitialTrials sets the number of Sobol trials before Bayesian optimization.
func (b *ExperimentBuilder) InitialTrials(n int32) *ExperimentBuilder {
	b.strategy().NumInitialTrials = &n
	return b
}

// Seed makes the suggestions reproducible.
func (b *ExperimentBuilder) Seed(seed int64) *ExperimentBuilder {
	b.strategy().Seed = &seed
	return b
}

// Build returns the Experiment message, or an InvalidArgument *Error for
// each value the builder could not encode (joined when there are several;
// errors.As finds the first).
func (b *ExperimentBuilder) Build() (*pb.Experiment, error) {
	if len(b.errs) == 1 {
		return nil, b.errs[0]
	}
	if len(b.errs) > 1 {
		return nil, errors.Join(b.errs...)
	}
	return b.message, nil
}
