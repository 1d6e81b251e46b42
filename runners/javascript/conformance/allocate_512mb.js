const chunks = []; for (;;) chunks.push(new Array(1 << 20).fill(1));
