-- one database per service; holdline_intake is created by the image itself
CREATE DATABASE holdline_risk OWNER holdline;
CREATE DATABASE holdline_assistance OWNER holdline;
CREATE DATABASE holdline_notify OWNER holdline;
