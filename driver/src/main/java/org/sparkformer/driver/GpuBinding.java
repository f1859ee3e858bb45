package org.sparkformer.driver;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Map;

/**
 * Runs in each training task on an executor: binds the task thread's ND4J device to the GPU that Spark
 * assigned the task ({@code spark.task.resource.gpu.amount=1}, ids from {@code scripts/gpu-discovery.sh}),
 * before the replica allocates anything. ND4J's CUDA backend places a thread's arrays on that thread's
 * device, so binding the thread is enough. On the CPU backend the assignment is logged and nothing changes.
 * Spark's ids are the discovery script's (nvidia-smi indexes); they equal ND4J's device numbers when
 * CUDA_VISIBLE_DEVICES is unset, as on Spark's GPU executors.
 */
final class GpuBinding {
    private static final Logger log = LogManager.getLogger(GpuBinding.class);

    private GpuBinding() {}

    /** What was decided, as one line for the driver's log and metrics (per executor: tasks move between partitions). */
    record Decision(String executor, int partition, String gpu, String action) {
        @Override public String toString() {
            return "executor " + executor + ": " + (gpu == null ? "no GPU assigned" : "GPU " + gpu + " assigned")
                    + ", " + action;
        }
    }

    /** Binds this task's thread and says what it did. */
    static Decision bind(int partition) {
        TaskContext task = TaskContext.get();
        String gpu = null;
        if (task != null) {
            Map<String, ResourceInformation> resources = task.resourcesJMap();
            ResourceInformation info = resources.get("gpu");
            if (info != null && info.addresses().length > 0) gpu = info.addresses()[0];
        }
        boolean cpu = Nd4j.getEnvironment().isCPU();
        String action = decide(gpu, cpu, cpu ? 0 : Nd4j.getAffinityManager().getNumberOfDevices());
        if (gpu != null && !cpu) Nd4j.getAffinityManager().unsafeSetDevice(Integer.parseInt(gpu));
        Decision d = new Decision(SparkEnv.get() == null ? "driver" : SparkEnv.get().executorId(), partition, gpu, action);
        log.debug("device binding: {}", d);   // the driver logs each executor's decision once (Trainer)
        return d;
    }

    /** The decision alone (no side effects): which device a replica with this assignment runs on. */
    static String decide(String gpu, boolean cpuBackend, int cudaDevices) {
        if (gpu == null) return cpuBackend ? "ND4J CPU backend (unchanged)" : "ND4J default device 0";
        if (cpuBackend) return "ND4J backend is CPU: not bound, CPU path unchanged (build with -Pcuda to use it)";
        int id;
        try {
            id = Integer.parseInt(gpu.trim());
        } catch (NumberFormatException e) {
            throw new IllegalStateException("Spark assigned GPU '" + gpu + "', not a device number: check the discovery script's output");
        }
        if (id < 0 || id >= cudaDevices)
            throw new IllegalStateException("Spark assigned GPU " + id + " but ND4J sees " + cudaDevices
                    + " CUDA device(s) on this executor (is CUDA_VISIBLE_DEVICES narrowing them?)");
        return "ND4J CUDA device " + id;
    }
}
