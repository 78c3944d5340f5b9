"""The creative director: Generation, Evaluation and Refinement Agents, policies and the Director loop."""

from artdirector.agents.director import Director, Result
from artdirector.agents.evaluation import AgentReport, EvaluationAgent
from artdirector.agents.generation import GenerationAgent, load_input
from artdirector.agents.memory import Memory, Step
from artdirector.agents.policies import BanditPolicy, RulePolicy, State, ThresholdPolicy
from artdirector.agents.refinement import RefinementAgent
from artdirector.agents.types import Action, Candidate, Request, RequestError, Samples, Stop, interpret

__all__ = [
    "Action",
    "AgentReport",
    "BanditPolicy",
    "Candidate",
    "Director",
    "EvaluationAgent",
    "GenerationAgent",
    "Memory",
    "RefinementAgent",
    "Request",
    "RequestError",
    "Result",
    "RulePolicy",
    "Samples",
    "State",
    "Step",
    "Stop",
    "ThresholdPolicy",
    "interpret",
    "load_input",
]
