"""Tests of authors_bench.py's flags and report conversion on a tiny fixture; no torch needed:

    python3 -m unittest discover -s bench/peers -p 'test_*.py'
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import authors_bench  # noqa: E402


def child_output(metrics):
    return {"metrics": metrics, "digitOfLabel": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "parameters": 478410, "wallSeconds": 100.0}


# the code's metrics_dict for 5 tasks: one list per task, one entry per "after task i"
TASK_IL = {
    "acc per task": {f"task {j + 1}": [round(0.9 - 0.01 * j - 0.02 * i, 4) for i in range(5)] for j in range(5)},
}
TASK_IL["average"] = [sum(TASK_IL["acc per task"][f"task {j + 1}"][i] for j in range(i + 1)) / (i + 1) for i in range(5)]
CLASS_IL = {
    "acc per task (all classes up to trained task)": {f"task {j + 1}": [0.5 if i >= j else 0.0 for i in range(5)] for j in range(5)},
    "acc per task (all classes)": {f"task {j + 1}": [0.1] * 5 for j in range(5)},
    "average": [0.5] * 5,
}


class FlagsTest(unittest.TestCase):
    def test_strategies_map_to_the_codes_flags_with_the_protocols_hyperparameters(self):
        def flags(name, scenario):
            return authors_bench.strategy_flags(name, "split-mnist", scenario)[0]
        self.assertEqual(flags("finetune", "task"), [])
        self.assertEqual(flags("ewc", "domain"), ["--ewc", "--lambda", "1e+06"])
        self.assertEqual(flags("online-ewc", "class"), ["--ewc", "--online", "--lambda", "1e+09", "--gamma", "0.8"])
        self.assertEqual(flags("dgr+distill", "class"), ["--replay", "generative", "--distill"])
        self.assertEqual(flags("joint", "task"), ["--replay", "offline"])

    def test_main_py_gets_the_protocol_and_the_optimizer(self):
        argv, implementation_strategy, params = authors_bench.main_py_argv("online-ewc", "split-mnist", "task", 3, 2000, "adam_reset", "/d", "/r")
        self.assertEqual(argv[:14], ["--experiment", "splitMNIST", "--scenario", "task", "--tasks", "5", "--iters", "2000", "--batch", "128", "--seed", "3", "--optimizer", "adam_reset"])
        self.assertIn("--metrics", argv)
        self.assertEqual(implementation_strategy, "Online EWC")
        self.assertEqual(params, {"lambda": 1e8, "gamma": 0.8})


    def test_each_changed_choice_names_its_own_implementation(self):
        self.assertEqual(authors_bench.implementation_name("adam", "torch"), "authors")
        self.assertEqual(authors_bench.implementation_name("adam_reset", "torch"), "authors-adam-reset")
        self.assertEqual(authors_bench.implementation_name("adam", "glorot"), "authors-glorot-init")
        self.assertEqual(authors_bench.implementation_name("adam_reset", "glorot"), "authors-adam-reset-glorot-init")

    def test_glorot_init_draws_glorot_weights_zero_biases_and_unit_excitability(self):
        calls = []

        class Data:
            def __init__(self, name):
                self.name = name

            def zero_(self):
                calls.append(("zero", self.name))

            def fill_(self, value):
                calls.append(("fill", self.name, value))

        class Param:
            def __init__(self, name):
                self.data = Data(name)

        class Layer:
            weight, bias, excitability = Param("weight"), Param("bias"), Param("excitability")

        class Init:
            @staticmethod
            def xavier_uniform_(data):
                calls.append(("xavier_uniform", data.name))

        class FakeTorch:
            class nn:
                init = Init

        authors_bench.glorot_reset_parameters(FakeTorch, Layer())
        self.assertEqual(sorted(calls), [("fill", "excitability", 1), ("xavier_uniform", "weight"), ("zero", "bias")])


class ReportTest(unittest.TestCase):
    def test_task_il_run_holds_the_codes_matrix_and_averages(self):
        run = authors_bench.report_run(child_output(TASK_IL), "finetune", "split-mnist", "task", 2, 2000, "None", {}, "fixed", "adam")
        self.assertEqual(run["scenario"], "task-incremental")
        self.assertEqual(run["accuracyMatrix"][1][3], TASK_IL["acc per task"]["task 4"][1])
        self.assertAlmostEqual(run["finalAverageAccuracy"], TASK_IL["average"][-1])
        self.assertEqual(len(run["averageAccuracyAfterTask"]), 5)
        self.assertEqual(run["tasks"][0], "split-mnist-0-1")
        self.assertEqual(run["protocol"]["pairs"], "fixed")
        self.assertEqual(run["samplesTrained"], 5 * 2000 * 128)
        self.assertEqual(run["samplesPerSecond"], 12800.0)
        self.assertEqual(run["params"], {"optimizer": "adam"})

    def test_class_il_uses_the_classes_seen_so_far_and_leaves_later_tasks_unscored(self):
        run = authors_bench.report_run(child_output(CLASS_IL), "finetune", "split-mnist", "class", 1, 2000, "None", {}, "fixed", "adam")
        self.assertEqual(run["accuracyMatrix"][0], [0.5, None, None, None, None])
        self.assertEqual(run["accuracyMatrix"][4], [0.5] * 5)
        self.assertAlmostEqual(run["finalAverageAccuracy"], 0.5)

    def test_a_matrix_that_disagrees_with_the_codes_average_is_refused(self):
        wrong = {**TASK_IL, "average": [0.0] * 5}
        with self.assertRaises(RuntimeError):
            authors_bench.report_run(child_output(wrong), "finetune", "split-mnist", "task", 1, 2000, "None", {}, "fixed", "adam")

    def test_random_pairs_name_tasks_by_their_digits(self):
        child = {**child_output(TASK_IL), "digitOfLabel": [3, 7, 0, 9, 1, 2, 4, 5, 6, 8]}
        run = authors_bench.report_run(child, "finetune", "split-mnist", "task", 1, 2000, "None", {}, "random", "adam")
        self.assertEqual(run["tasks"], ["split-mnist-3-7", "split-mnist-0-9", "split-mnist-1-2", "split-mnist-4-5", "split-mnist-6-8"])
        self.assertEqual(run["protocol"]["pairs"], "random")


if __name__ == "__main__":
    unittest.main()
