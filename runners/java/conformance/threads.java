import java.util.concurrent.*;
import java.util.stream.IntStream;

public class Main {
    public static void main(String[] args) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(4);
        Future<Integer> value = pool.submit(() -> 6 * 7);
        int sum = IntStream.rangeClosed(1, 1000).parallel().sum();
        pool.shutdown();
        if (sum != 500500) throw new IllegalStateException("parallel sum " + sum);
        System.out.println(value.get());
    }
}
