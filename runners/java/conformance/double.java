import java.nio.file.*;
public class Main { public static void main(String[] a) throws Exception { long n = new java.util.Scanner(System.in).nextLong(); System.out.println(n * 2); java.net.URL u = Main.class.getResource("Main.class"); System.err.print(u == null ? "no-class-file" : Files.getLastModifiedTime(Paths.get(u.toURI())).toString()); } }
