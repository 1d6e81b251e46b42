public class Main { public static void main(String[] a) { System.out.print("x".repeat(10_000_000)); System.out.flush(); } }
