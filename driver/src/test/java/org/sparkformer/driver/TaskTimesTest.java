package org.sparkformer.driver;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class TaskTimesTest {
    @Test void trainingStageStragglersAndSyncTime() {
        List<TaskTimes.Task> tasks = List.of(
                new TaskTimes.Task(3, "1", 0, 0, 1000),     // training stage: 4 tasks, one on executor 2 much slower
                new TaskTimes.Task(3, "1", 1, 0, 1100),
                new TaskTimes.Task(3, "2", 2, 0, 1200),
                new TaskTimes.Task(3, "2", 3, 0, 5000),
                new TaskTimes.Task(4, "1", 0, 0, 20),       // a short bookkeeping stage
                new TaskTimes.Task(4, "2", 1, 0, 30));
        TaskTimes.Round r = TaskTimes.summarize(tasks, 6000, 10);
        assertEquals(1100, r.medianMs());
        assertEquals(5000, r.maxMs());
        assertEquals(1000, r.syncMs());   // wall time not spent in the slowest training task
        assertEquals(Map.of("1", 105.0, "2", 310.0), r.executorStepMs());   // mean task time / 10 steps
        assertEquals(List.of(new TaskTimes.Straggler(3, "2", 3, 5000, 1100)), r.stragglers());
        assertEquals(0, TaskTimes.summarize(List.of(), 50, 5).maxMs());
    }
}
