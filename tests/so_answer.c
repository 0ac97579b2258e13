/*
 * so_answer.c - a library prog_coherence copies with small writes and
 * loads with dlopen before closing the copy (the loader reads the file
 * with calls of its own: the shim writes back first).
 */
int wct_answer(void);

int wct_answer(void)
{
    return 42;
}
