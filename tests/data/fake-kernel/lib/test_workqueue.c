int test_wq;
