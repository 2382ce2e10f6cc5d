int wq_line1;
int wq_line2;
int wq_line3;
