"""Distillation: PSL relabel by the teacher (``psl``) and the student trained on those labels (``student``)."""
