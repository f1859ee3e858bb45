package org.sparkformer.driver;

import org.apache.spark.Success$;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerExecutorRemoved;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.TaskInfo;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * A SparkListener that keeps every finished task's stage, executor, partition and duration, so the driver
 * can describe each training round: the training stage (the one with the most task time), its median and
 * slowest task, per-executor time per step, stragglers (tasks slower than twice their stage's median), and
 * the time the round spent outside the training tasks (parameter averaging, broadcast, scheduling).
 */
final class TaskTimes extends SparkListener {
    record Task(int stage, String executor, int partition, long launchMs, long durationMs) {}

    record Straggler(int stage, String executor, int partition, long ms, long medianMs) {}

    /** One round's summary. */
    record Round(long medianMs, long maxMs, long syncMs, Map<String, Double> executorStepMs, List<Straggler> stragglers) {}

    /** Work lost since the last round: an executor gone, or a task that failed and was run again. */
    record Loss(String executor, String what, long taskMs) {}

    private final ConcurrentLinkedQueue<Task> finished = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<Loss> losses = new ConcurrentLinkedQueue<>();

    @Override public void onTaskEnd(SparkListenerTaskEnd end) {
        TaskInfo info = end.taskInfo();
        if (info == null) return;
        if (end.reason() != Success$.MODULE$) {   // failed, killed or lost with its executor: Spark runs it again
            losses.add(new Loss(info.executorId(), "task " + info.index() + " of stage " + end.stageId() + " failed: "
                    + end.reason().getClass().getSimpleName().replace("$", ""), info.duration()));
            return;
        }
        finished.add(new Task(end.stageId(), info.executorId(), info.index(), info.launchTime(), info.duration()));
    }

    @Override public void onExecutorRemoved(SparkListenerExecutorRemoved removed) {
        losses.add(new Loss(removed.executorId(), "executor removed: " + removed.reason(), 0));
    }

    /** The losses since the last call. */
    List<Loss> drainLosses() {
        List<Loss> out = new ArrayList<>();
        for (Loss l; (l = losses.poll()) != null; ) out.add(l);
        return out;
    }

    /**
     * Summarises the tasks launched since {@code sinceMs}, waiting briefly for the listener bus to deliver at
     * least {@code expectedTasks} of them (events arrive asynchronously after a job ends).
     */
    Round round(long sinceMs, long wallMs, int steps, int expectedTasks) {
        long deadline = System.currentTimeMillis() + 2000;
        List<Task> tasks = new ArrayList<>();
        while (true) {
            tasks.clear();
            for (Task t : finished) if (t.launchMs() >= sinceMs) tasks.add(t);
            if (tasks.size() >= expectedTasks || System.currentTimeMillis() > deadline) break;
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        finished.removeIf(t -> t.launchMs() < sinceMs || tasks.contains(t));
        return summarize(tasks, wallMs, steps);
    }

    /** The round's numbers from its tasks: the training stage is the one with the most task time. */
    static Round summarize(List<Task> tasks, long wallMs, int steps) {
        if (tasks.isEmpty()) return new Round(0, 0, wallMs, Map.of(), List.of());
        Map<Integer, List<Task>> byStage = new TreeMap<>();
        for (Task t : tasks) byStage.computeIfAbsent(t.stage(), k -> new ArrayList<>()).add(t);
        List<Task> training = byStage.values().stream()
                .max(Comparator.comparingLong(ts -> ts.stream().mapToLong(Task::durationMs).sum())).orElseThrow();
        List<Straggler> stragglers = new ArrayList<>();
        for (List<Task> stage : byStage.values()) {
            long median = median(stage);
            for (Task t : stage)
                if (stage.size() > 1 && t.durationMs() > 2 * median && t.durationMs() > 100)
                    stragglers.add(new Straggler(t.stage(), t.executor(), t.partition(), t.durationMs(), median));
        }
        long max = training.stream().mapToLong(Task::durationMs).max().orElse(0);
        Map<String, List<Long>> perExecutor = new TreeMap<>();
        for (Task t : training) perExecutor.computeIfAbsent(t.executor(), k -> new ArrayList<>()).add(t.durationMs());
        Map<String, Double> stepMs = new TreeMap<>();
        perExecutor.forEach((e, ds) -> stepMs.put(e, ds.stream().mapToLong(Long::longValue).average().orElse(0) / Math.max(1, steps)));
        return new Round(median(training), max, Math.max(0, wallMs - max), stepMs, stragglers);
    }

    private static long median(List<Task> tasks) {
        long[] d = tasks.stream().mapToLong(Task::durationMs).sorted().toArray();
        return d.length == 0 ? 0 : d[(d.length - 1) / 2];
    }
}
